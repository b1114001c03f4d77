// check_duckdb.js - print a Parquet file's rows as DuckDB reads them, in a
// canonical CSV that compares exactly with what sheaf read or wrote.
//
// usage: node tests/unit/data/parquet/check_duckdb.js FILE.parquet
// DuckDB comes from @duckdb/node-api under $BENCH_PEERS (default
// /tmp/bench-peers, installed by ../shared/bench/setup.sh).
//
// Output: a header of the column names, then one line a row, fields
// separated by commas, in file order:
//   null         an empty field
//   integers     decimal (BIGINT, INTEGER, SMALLINT, TINYINT)
//   floats       'f' and the 16 hex digits of the IEEE-754 double's bits
//                (FLOAT widened to double), 'nan' for any NaN
//   booleans     true / false
//   strings      'x' and the hex of the UTF-8 bytes (so '' is 'x')
// Other types are printed as 'other:' and their text.
// pq_canon (pq_canon.c beside this file) prints sheaf's view of a file in
// the same form, so `diff` of the two proves they read the same values.
const path = require("path");
const peers = process.env.BENCH_PEERS || "/tmp/bench-peers";
const { DuckDBInstance } = require("module").createRequire(path.join(peers, "x.js"))("@duckdb/node-api");

const file = process.argv[2];
if (!file) {
  console.error("usage: check_duckdb.js FILE.parquet");
  process.exit(2);
}
const q = (s) => `'${s.replace(/'/g, "''")}'`;

function canon(v, type) {
  if (v === null || v === undefined) return "";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") {
    if (/^(DOUBLE|FLOAT)$/.test(type)) {
      if (Number.isNaN(v)) return "nan";
      const dv = new DataView(new ArrayBuffer(8));
      dv.setFloat64(0, v, true);
      return "f" + dv.getBigUint64(0, true).toString(16).padStart(16, "0");
    }
    return String(v);
  }
  if (typeof v === "string") return "x" + Buffer.from(v, "utf8").toString("hex").toUpperCase();
  return "other:" + String(v);
}

(async () => {
  const con = await (await DuckDBInstance.create(":memory:")).connect();
  const reader = await con.runAndReadAll(`SELECT * FROM read_parquet(${q(file)})`);
  const names = reader.columnNames();
  const types = reader.columnTypes().map((t) => t.toString());
  const out = [names.join(",")];
  for (const row of reader.getRows())
    out.push(row.map((v, i) => canon(v, types[i])).join(","));
  process.stdout.write(out.join("\n") + "\n");
})().catch((e) => { console.error(String(e)); process.exit(1); });
