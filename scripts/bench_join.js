// bench_join.js - W8 of `make bench` (scripts/bench.sh): a join of the
// bench file with a second table of about 200 MB (for the 1 GiB file),
// under a 64 MiB memory budget, with DuckDB as the peer.
//
//   node scripts/bench_join.js gen ROWS SIDE
//       writes SIDE (CSV with a header), the second table: ROWS reviews
//       of papers, deterministic (integer arithmetic and md5 of the row
//       number, no random()):
//         id        the reviewed paper, (j * 7919) % KEYS + 1 with
//                   KEYS = ROWS * 16 / 17: about 1/16 of the ids have
//                   two reviews, ids past the bench file's last one match
//                   nothing; every 1000th review has no id (null: it
//                   never matches)
//         venue     one of 50 names ("venue-07")
//         score     0.00 .. 9.99
//         reviewer  one of 100000 names
//         note      88 characters of md5 hex, so that a row is about
//                   125 bytes: 1.7 million rows are about 200 MB
//   node scripts/bench_join.js w8 CSV SIDE MEMORY [OUT]
//       W8's query over the two CSV files (the bench's column types) in
//       DuckDB with memory_limit MEMORY (e.g. 64MiB) and spilling to a
//       temporary directory beside OUT, in the bench's canonical form
//       (floats as %.6g), to OUT (default stdout): the peer's run that
//       bench.sh times. W8 (tests/integration/workloads.py):
//         SELECT category, venue, count(*), sum(score), max(citations)
//         FROM bench JOIN side USING (id) GROUP BY ALL ORDER BY ALL
//
// @duckdb/node-api comes from $BENCH_PEERS (default /tmp/bench-peers).
const path = require("path");
const fs = require("fs");
const peers = process.env.BENCH_PEERS || "/tmp/bench-peers";
const { DuckDBInstance } = require("module").createRequire(
  path.join(peers, "x.js"))("@duckdb/node-api");

const args = process.argv.slice(2);
const q = (s) => `'${s.replace(/'/g, "''")}'`;

const BENCH_COLS = `{'id': 'BIGINT', 'category': 'VARCHAR', 'year': 'INTEGER',
  'n_authors': 'INTEGER', 'citations': 'DOUBLE', 'submitter': 'VARCHAR',
  'abstract': 'VARCHAR'}`;
const SIDE_COLS = `{'id': 'BIGINT', 'venue': 'VARCHAR', 'score': 'DOUBLE',
  'reviewer': 'VARCHAR', 'note': 'VARCHAR'}`;

(async () => {
  const cmd = args[0];
  if (cmd === "gen" && args.length === 3) {
    const rows = Number.parseInt(args[1], 10);
    const keys = Math.max(1, Math.floor((rows * 16) / 17));
    const con = await (await DuckDBInstance.create(":memory:")).connect();
    await con.run("SET threads = 1");
    await con.run(`COPY (SELECT
        CASE WHEN j % 1000 = 999 THEN NULL
             ELSE (j * 7919) % ${keys} + 1 END AS id,
        printf('venue-%02d', (j * 31) % 50) AS venue,
        printf('%.2f', ((j * 2654435761) % 1000) / 100.0) AS score,
        'r' || ((j * 17) % 100000) AS reviewer,
        md5(j::VARCHAR) || md5((j + 1)::VARCHAR)
          || substr(md5((j + 2)::VARCHAR), 1, 24) AS note
      FROM (SELECT range AS j FROM range(${rows})) ORDER BY j)
      TO ${q(args[2])} (FORMAT csv, HEADER)`);
    return;
  }
  if (cmd === "w8" && (args.length === 4 || args.length === 5)) {
    const [, csv, side, memory, out = "/dev/stdout"] = args;
    const tmp = (out === "/dev/stdout" ? "/tmp" : path.dirname(out))
      + "/duckdb-w8.tmp";
    const con = await (await DuckDBInstance.create(":memory:")).connect();
    await con.run(`SET memory_limit = ${q(memory)}`);
    await con.run(`SET temp_directory = ${q(tmp)}`);
    // DuckDB runs out of memory at 64 MiB with its defaults: one thread,
    // no insertion order (the result is sorted anyway)
    await con.run("SET preserve_insertion_order = false");
    await con.run("SET threads = 1");
    const r = await con.runAndReadAll(`SELECT a.category, s.venue,
        count(*) AS count, printf('%.6g', sum(s.score)) AS sum_score,
        printf('%.6g', max(a.citations)) AS max_citations
      FROM read_csv(${q(csv)}, header = true, quote = '"', escape = '"',
                    columns = ${BENCH_COLS}) a
      JOIN read_csv(${q(side)}, header = true, columns = ${SIDE_COLS}) s
        ON a.id = s.id
      GROUP BY ALL ORDER BY a.category, s.venue`);
    const lines = [r.columnNames().join(",")];
    for (const row of r.getRows())
      lines.push(row.map((v) => (v === null ? "" : String(v))).join(","));
    fs.writeFileSync(out, lines.join("\n") + "\n");
    fs.rmSync(tmp, { recursive: true, force: true });
    return;
  }
  console.error("usage: bench_join.js gen ROWS SIDE | "
                + "w8 CSV SIDE MEMORY [OUT]");
  process.exit(2);
})().catch((e) => { console.error(String(e)); process.exit(1); });
