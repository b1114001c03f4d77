// s3check.js - an S3 client independent of sheaf's (npm's minio), for the
// integration tests to check what lib/s3 writes, and to write what it
// reads. Configured like sheaf: SHEAF_S3_ENDPOINT (http://host:port),
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION.
//
//   node s3check.js stat BUCKET KEY              {"size": N, "etag": "..."}
//   node s3check.js get BUCKET KEY               the bytes to stdout
//   node s3check.js put BUCKET KEY FILE
//   node s3check.js list BUCKET PREFIX           one JSON line per object
//   node s3check.js presign BUCKET KEY SECONDS ISO_DATE   the URL
'use strict';
const fs = require('fs');
const Minio = require('minio');

function client() {
  const ep = new URL(process.env.SHEAF_S3_ENDPOINT);
  return new Minio.Client({
    endPoint: ep.hostname,
    port: Number(ep.port),
    useSSL: ep.protocol === 'https:',
    accessKey: process.env.AWS_ACCESS_KEY_ID,
    secretKey: process.env.AWS_SECRET_ACCESS_KEY,
    region: process.env.AWS_REGION || 'us-east-1',
    pathStyle: true,
  });
}

async function main(argv) {
  const c = client();
  const [cmd, bucket, key] = argv;
  if (cmd === 'stat') {
    const s = await c.statObject(bucket, key);
    process.stdout.write(JSON.stringify({ size: s.size, etag: s.etag }));
  } else if (cmd === 'get') {
    const stream = await c.getObject(bucket, key);
    for await (const chunk of stream) process.stdout.write(chunk);
  } else if (cmd === 'put') {
    await c.fPutObject(bucket, key, argv[3]);
  } else if (cmd === 'list') {
    const objs = [];
    for await (const o of c.listObjectsV2(bucket, key, true)) objs.push(o);
    for (const o of objs) {
      process.stdout.write(JSON.stringify({ key: o.name, size: o.size,
                                            etag: o.etag }) + '\n');
    }
  } else if (cmd === 'presign') {
    const url = await c.presignedUrl('GET', bucket, key, Number(argv[3]),
                                     {}, new Date(argv[4]));
    process.stdout.write(url);
  } else {
    throw new Error(`unknown command ${cmd}`);
  }
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`s3check: ${e.code || ''} ${e.message}\n`);
  process.exit(1);
});
