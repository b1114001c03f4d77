// bench_parquet.js - W7 of `make bench` (scripts/bench.sh): the W1 groupby
// read from a Parquet copy of the bench file, with DuckDB as the peer.
//
//   node scripts/bench_parquet.js copy CSV PARQUET
//       DuckDB reads CSV with the bench's column types (as its peer does:
//       ../shared/bench/peers/duckdb.js) and writes PARQUET (snappy,
//       DuckDB's default row groups): the file sheaf and DuckDB then read.
//   node scripts/bench_parquet.js w7 PARQUET [OUT]
//       W1's query over PARQUET, in the bench's canonical form (floats as
//       %.6g), to OUT (default stdout): the peer's run that bench.sh times.
//   node scripts/bench_parquet.js w7-polars PARQUET OUT
//       the same query in Polars (a lazy scanParquet, the streaming
//       engine, as ../shared/bench/peers/polars.js runs W1 over the CSV),
//       floats as Polars prints them: bench.sh puts OUT in the canonical
//       form after timing it (workloads.py canon).
//
// @duckdb/node-api and nodejs-polars come from $BENCH_PEERS (default
// /tmp/bench-peers).
const path = require("path");
const peers = process.env.BENCH_PEERS || "/tmp/bench-peers";
const peerRequire = require("module").createRequire(path.join(peers, "x.js"));
const fs = require("fs");

const [cmd, src, out = "/dev/stdout"] = process.argv.slice(2);
const q = (s) => `'${s.replace(/'/g, "''")}'`;

if (cmd === "w7-polars") {
  const pl = peerRequire("nodejs-polars");
  const col = pl.col;
  pl.scanParquet(src).filter(col("year").gtEq(2010)).groupBy("category")
    .agg(pl.len().alias("count"),
         col("citations").mean().alias("mean_citations"),
         col("n_authors").max().alias("max_n_authors"))
    .sort("category").collectSync({ engine: "streaming" }).writeCSV(out);
  process.exit(0);
}
const { DuckDBInstance } = peerRequire("@duckdb/node-api");

(async () => {
  const con = await (await DuckDBInstance.create(":memory:")).connect();
  if (cmd === "copy") {
    await con.run(`COPY (SELECT * FROM read_csv(${q(src)}, header = true,
        quote = '"', escape = '"',
        columns = {'id': 'BIGINT', 'category': 'VARCHAR', 'year': 'INTEGER',
                   'n_authors': 'INTEGER', 'citations': 'DOUBLE',
                   'submitter': 'VARCHAR', 'abstract': 'VARCHAR'}))
      TO ${q(out)} (FORMAT parquet, COMPRESSION snappy)`);
    return;
  }
  if (cmd !== "w7") {
    console.error("usage: bench_parquet.js copy CSV PARQUET | w7 PARQUET [OUT]");
    process.exit(2);
  }
  const r = await con.runAndReadAll(`SELECT category, count(*) AS count,
      printf('%.6g', avg(citations)) AS mean_citations,
      max(n_authors) AS max_n_authors
    FROM read_parquet(${q(src)}) WHERE year >= 2010
    GROUP BY category ORDER BY category`);
  const lines = [r.columnNames().join(",")];
  for (const row of r.getRows())
    lines.push(row.map((v) => (v === null ? "" : String(v))).join(","));
  fs.writeFileSync(out, lines.join("\n") + "\n");
})().catch((e) => { console.error(String(e)); process.exit(1); });
