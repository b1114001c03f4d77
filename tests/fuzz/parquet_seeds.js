// parquet_seeds.js - write the seeds of the Parquet fuzzer
// (tests/fuzz/corpus/parquet/) with DuckDB: tiny files (under the 4 KiB
// -max_len of scripts/fuzz.sh), each codec, data pages v1 (PLAIN,
// dictionaries) and v2 (DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY,
// RLE booleans, BYTE_STREAM_SPLIT), nulls, every type sheaf maps, several
// row groups, and a nested column.
//
// usage: node tests/fuzz/parquet_seeds.js [DIR]
// DuckDB comes from @duckdb/node-api under $BENCH_PEERS (default
// /tmp/bench-peers).
const path = require("path");
const peers = process.env.BENCH_PEERS || "/tmp/bench-peers";
const { DuckDBInstance } = require("module").createRequire(
  path.join(peers, "x.js"))("@duckdb/node-api");

const dir = process.argv[2] || path.join(__dirname, "corpus", "parquet");
const q = (s) => `'${s.replace(/'/g, "''")}'`;

const TABLE = `CREATE TABLE t AS SELECT
  i::BIGINT AS id,
  CASE WHEN i % 4 = 1 THEN NULL ELSE (i * 37 - 100)::INTEGER END AS n,
  CASE WHEN i % 5 = 2 THEN NULL ELSE i * 0.5 - 3 END AS v,
  CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END AS b,
  ['a', 'bb', '', 'ccc'][i % 4 + 1] AS k,
  CASE WHEN i % 6 = 5 THEN NULL ELSE 'r' || i END AS s,
  (i * 1.25)::DECIMAL(9,2) AS dec,
  DATE '1969-12-20' + i AS d,
  (TIMESTAMP '2001-02-03 04:05:06.789' + i * INTERVAL 77 SECOND)::TIMESTAMP_MS AS tms,
  make_timestamp_ns((i - 10) * 123456789012 + 7) AS tns,
  TIMESTAMPTZ '2010-06-01 12:00:00+00' + i * INTERVAL 1 HOUR AS tz,
  (i % 100)::TINYINT AS i8,
  (i * 3)::UINTEGER AS u32,
  (i / 3.0)::FLOAT AS f
FROM (SELECT range::INTEGER AS i FROM range(ROWS))`;

(async () => {
  const con = await (await DuckDBInstance.create(":memory:")).connect();
  await con.run("SET TimeZone = 'UTC'");
  const seeds = [
    ["v1_uncompressed", 12, "V1", "uncompressed", 1000000],
    ["v1_snappy", 12, "V1", "snappy", 1000000],
    ["v2_zstd", 12, "V2", "zstd", 1000000],
    ["v2_gzip", 12, "V2", "gzip", 1000000],
  ];
  for (const [name, rows, ver, codec, rg] of seeds) {
    await con.run("DROP TABLE IF EXISTS t");
    await con.run(TABLE.replace("ROWS", String(rows)));
    await con.run(`COPY t TO ${q(path.join(dir, name + ".parquet"))}
      (FORMAT parquet, COMPRESSION ${codec}, PARQUET_VERSION ${ver},
       ROW_GROUP_SIZE ${rg})`);
  }
  // several row groups of two columns (DuckDB cuts at 2048 rows at least)
  await con.run(`COPY (SELECT (range % 3)::INTEGER AS a, range % 2 = 0 AS b
      FROM range(4100)) TO ${q(path.join(dir, "row_groups.parquet"))}
    (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 2048)`);
  // dictionaries (RLE_DICTIONARY indices) in both page versions
  for (const [ver, codec] of [["V1", "zstd"], ["V2", "snappy"]]) {
    await con.run(`COPY (SELECT 'k' || (range % 5) AS k,
        CASE WHEN range % 9 = 4 THEN NULL ELSE (range % 7)::INTEGER END AS n,
        (range % 3)::DOUBLE AS x, DATE '2000-01-01' + (range % 4)::INTEGER AS d
        FROM range(300))
      TO ${q(path.join(dir, `dict_${ver.toLowerCase()}_${codec}.parquet`))}
      (FORMAT parquet, COMPRESSION ${codec}, PARQUET_VERSION ${ver})`);
  }
  // a list and a struct between flat columns
  await con.run(`COPY (SELECT range::INTEGER AS id, [range, range + 1] AS l,
      {'a': range} AS st, 's' || range AS s FROM range(5))
    TO ${q(path.join(dir, "nested.parquet"))} (FORMAT parquet)`);
})().catch((e) => { console.error(e); process.exit(1); });
