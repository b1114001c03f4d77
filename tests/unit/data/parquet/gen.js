// gen.js - make the Parquet fixtures of tests/unit/test_parquet.c with DuckDB.
//
// usage: node tests/unit/data/parquet/gen.js [DIR]   (default: this folder)
// DuckDB comes from @duckdb/node-api under $BENCH_PEERS (default
// /tmp/bench-peers, installed by ../shared/bench/setup.sh).
//
// One table 't' of every type sheaf reads, with nulls in every column, is
// written once per codec (uncompressed, snappy, zstd, gzip) and Parquet
// version (V1: data page v1, PLAIN and dictionary; V2: data page v2,
// DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, RLE booleans...), with
// small row groups so there are several. expected.csv.gz holds the values as
// sheaf maps them (DATE: days, TIMESTAMP: the file's unit since the epoch,
// DECIMAL and FLOAT: double, strings hex-encoded after an 'x' so that the
// empty string and null differ, null: an empty field), written by DuckDB.
const path = require("path");
const peers = process.env.BENCH_PEERS || "/tmp/bench-peers";
const { DuckDBInstance } = require("module").createRequire(path.join(peers, "x.js"))("@duckdb/node-api");

const dir = process.argv[2] || __dirname;
const q = (s) => `'${s.replace(/'/g, "''")}'`;
const N = 500;

const TABLE = `CREATE TABLE t AS SELECT
  CASE WHEN i % 7 = 3 THEN NULL ELSE (i % 256 - 128)::TINYINT END AS i8,
  CASE WHEN i % 11 = 5 THEN NULL ELSE (i * 37 % 65536 - 32768)::SMALLINT END AS i16,
  CASE WHEN i % 13 = 0 THEN NULL WHEN i = 1 THEN -2147483648 WHEN i = 2 THEN 2147483647
       ELSE (i * 7919 - 1000000)::INTEGER END AS i32,
  CASE WHEN i % 5 = 1 THEN NULL WHEN i = 3 THEN -9223372036854775808 WHEN i = 4 THEN 9223372036854775807
       ELSE i::BIGINT * 1000000007 END AS i64,
  CASE WHEN i % 9 = 2 THEN NULL ELSE (i / 8.0)::FLOAT END AS f32,
  CASE WHEN i % 10 = 4 THEN NULL WHEN i = 6 THEN 'inf'::DOUBLE WHEN i = 7 THEN '-inf'::DOUBLE
       WHEN i = 8 THEN 'nan'::DOUBLE ELSE i * 0.1 - 17.25 END AS f64,
  CASE WHEN i % 3 = 0 THEN NULL ELSE i % 4 < 2 END AS b,
  CASE WHEN i % 6 = 5 THEN NULL ELSE ['alpha', 'beta', '', 'gamma, "quoted"', 'ünï €', 'x'][i % 6 + 1] END AS s_dict,
  CASE WHEN i % 8 = 1 THEN NULL ELSE 'row ' || i || repeat('z', i % 17) END AS s_uniq,
  CASE WHEN i % 12 = 7 THEN NULL ELSE (i * 13.37 - 5000)::DECIMAL(9,2) END AS dec9,
  CASE WHEN i % 12 = 8 THEN NULL ELSE (i * 123456.789 - 1e9)::DECIMAL(18,4) END AS dec18,
  CASE WHEN i % 12 = 9 THEN NULL ELSE (i * 987654321.123 - 1e12)::DECIMAL(38,6) END AS dec38,
  CASE WHEN i % 14 = 2 THEN NULL ELSE DATE '1969-12-01' + (i * 3)::INTEGER END AS dt,
  CASE WHEN i % 15 = 3 THEN NULL ELSE TIMESTAMP '1999-12-31 23:59:59.123456' + i * INTERVAL 1234567 MICROSECOND END AS ts_us,
  CASE WHEN i % 15 = 4 THEN NULL ELSE (TIMESTAMP '2001-02-03 04:05:06.789' + i * INTERVAL 777 SECOND)::TIMESTAMP_MS END AS ts_ms,
  CASE WHEN i % 15 = 5 THEN NULL ELSE (TIMESTAMP '2020-01-01' + i * INTERVAL 1 SECOND)::TIMESTAMP_NS END AS ts_ns,
  CASE WHEN i % 15 = 6 THEN NULL ELSE (TIMESTAMPTZ '2010-06-01 12:00:00+00' + i * INTERVAL 1 HOUR) END AS ts_tz,
  CASE WHEN i % 2 = 0 THEN NULL ELSE i END AS half_null,
  NULL::INTEGER AS all_null,
  CASE WHEN i % 9 = 0 THEN NULL ELSE i % 5 END AS small_int,
  i AS id
FROM (SELECT range::INTEGER AS i FROM range(${N}))`;

const EXPECT = `SELECT i8, i16, i32, i64, f32::DOUBLE AS f32, f64, b,
  'x' || hex(s_dict) AS s_dict, 'x' || hex(s_uniq) AS s_uniq,
  dec9::DOUBLE AS dec9, dec18::DOUBLE AS dec18, dec38::DOUBLE AS dec38,
  dt - DATE '1970-01-01' AS dt, epoch_us(ts_us) AS ts_us, epoch_ms(ts_ms) AS ts_ms,
  epoch_ns(ts_ns) AS ts_ns, epoch_us(ts_tz) AS ts_tz, half_null, all_null, small_int, id
FROM t ORDER BY id`;

(async () => {
  const con = await (await DuckDBInstance.create(":memory:")).connect();
  await con.run("SET TimeZone = 'UTC'");
  await con.run(TABLE);
  for (const ver of ["V1", "V2"]) {
    for (const codec of ["uncompressed", "snappy", "zstd", "gzip"]) {
      const f = path.join(dir, `all_${ver.toLowerCase()}_${codec}.parquet`);
      await con.run(`COPY (SELECT * FROM t ORDER BY id) TO ${q(f)}
        (FORMAT parquet, COMPRESSION ${codec}, ROW_GROUP_SIZE 300, PARQUET_VERSION ${ver})`);
    }
  }
  // several row groups (DuckDB cuts them at 2048-row vectors at least)
  await con.run(`COPY (SELECT range::BIGINT AS id, 'k' || (range % 100) AS k FROM range(10000))
    TO ${q(path.join(dir, "rowgroups.parquet"))} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 2048)`);
  // nested columns between flat ones: only id and s can be read
  await con.run(`COPY (SELECT range::INTEGER AS id, [range, range + 1] AS l,
      {'a': range, 'b': 'b' || range} AS st, 's' || range AS s FROM range(100))
    TO ${q(path.join(dir, "nested.parquet"))} (FORMAT parquet, COMPRESSION snappy)`);
  await con.run(`COPY (${EXPECT}) TO ${q(path.join(dir, "expected.csv.gz"))} (FORMAT csv, HEADER, COMPRESSION gzip)`);
})().catch((e) => { console.error(e); process.exit(1); });
