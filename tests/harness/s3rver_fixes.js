'use strict';

// Preloaded into every s3rver the tests and the bench start (node --require,
// through NODE_OPTIONS: see S3rverEnv() in s3_server.h, and tests/bench/run.sh).
// It fixes two races of s3rver 3.7's file store that the stores Bunker
// targets (AWS, MinIO, Ceph RGW, GCS) do not have, so the tests check the
// backend, not s3rver:
//
//  - PutObject was answered before the object's bytes were on disk: the
//    promise resolved on the hashing Transform's 'finish', not on the file
//    stream's. A GET right after a PUT could find no object (404) or an empty
//    one (seen in the keep-alive and awkward-keys tests).
//  - Objects were written in place, so a PUT cut mid-body could still write
//    into the file a retried PUT of the same key was writing (zeros in the
//    stored object).
//
//  - Bodies sent with streaming SigV4 (x-amz-content-sha256:
//    STREAMING-AWS4-HMAC-SHA256-PAYLOAD, Content-Encoding: aws-chunked, what
//    minio-go and so restic send over plain http) were stored verbatim, chunk
//    headers and signatures included. S3 decodes them.
//
// Here an object is written to a temporary file next to it and renamed over
// it once complete, then its metadata is written, then the PUT is answered:
// atomic, read-after-write, as S3 is. A temporary file never ends in
// "._S3rver_object", so listings skip it. aws-chunked bodies of PUT object
// and upload part are decoded (chunk signatures are not checked: s3rver
// checks no signature). Nothing else changes.
//
// Loaded into every node process of a test; does nothing unless the process
// is s3rver.

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { createRequire } = require('module');
const { Transform, pipeline } = require('stream');

function s3rverStore() {
  const script = process.argv[1];
  if (!script) return null;
  let real;
  try {
    real = fs.realpathSync(script);
  } catch (e) {
    return null;
  }
  if (!/s3rver/.test(real)) return null;
  const store = path.join(path.dirname(real), '..', 'lib', 'stores', 'filesystem.js');
  return fs.existsSync(store) ? store : null;
}

const STREAMING = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';

function isAwsChunked(content) {
  return Boolean(content && content.headers && content.headers['x-amz-content-sha256'] === STREAMING);
}

// Decodes an aws-chunked body: repeated "<hex size>;chunk-signature=<sig>\r\n"
// "<size bytes>\r\n", ended by a chunk of size 0.
function awsChunkedDecoder() {
  let buf = Buffer.alloc(0);
  let remaining = 0; // bytes left in the current chunk's data
  let state = 'header'; // header, data, crlf, done
  return new Transform({
    transform(chunk, encoding, callback) {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length && state !== 'done') {
        if (state === 'header') {
          const eol = buf.indexOf('\r\n');
          if (eol < 0) {
            if (buf.length > 4096) return callback(new Error('aws-chunked: chunk header too long'));
            break;
          }
          const line = buf.subarray(0, eol).toString('latin1');
          const size = /^[0-9a-fA-F]+$/.test(line.split(';')[0]) ? parseInt(line.split(';')[0], 16) : NaN;
          if (!Number.isSafeInteger(size)) {
            return callback(new Error('aws-chunked: bad chunk header ' + JSON.stringify(line.slice(0, 80))));
          }
          buf = buf.subarray(eol + 2);
          remaining = size;
          state = size === 0 ? 'done' : 'data';
        } else if (state === 'data') {
          const n = Math.min(remaining, buf.length);
          this.push(buf.subarray(0, n));
          buf = buf.subarray(n);
          remaining -= n;
          if (remaining === 0) state = 'crlf';
        } else {
          if (buf.length < 2) break;
          buf = buf.subarray(2);
          state = 'header';
        }
      }
      return callback();
    },
    flush(callback) {
      callback(state === 'done' ? null : new Error('aws-chunked: body ended inside a chunk'));
    },
  });
}

// The stages that turn a request body into the object's bytes.
function bodyStages(content) {
  return isAwsChunked(content) ? [content, awsChunkedDecoder()] : [content];
}

// Content-Encoding without aws-chunked (S3 does not store it).
function dropAwsChunkedEncoding(metadata) {
  const enc = metadata['content-encoding'];
  if (enc === undefined) return;
  const rest = String(enc)
    .split(',')
    .map(e => e.trim())
    .filter(e => e && e !== 'aws-chunked');
  if (rest.length) metadata['content-encoding'] = rest.join(',');
  else delete metadata['content-encoding'];
}

const storePath = s3rverStore();
if (storePath) {
  const requireFromS3rver = createRequire(storePath);
  const FilesystemStore = requireFromS3rver(storePath);
  const fse = requireFromS3rver('fs-extra');
  let counter = 0;

  FilesystemStore.prototype.putObject = async function putObject(object) {
    const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
    await fse.mkdirp(path.dirname(objectPath));
    const tmp = `${objectPath}.bunker-tmp-${process.pid}-${++counter}`;
    const md5 = crypto.createHash('md5');
    let size = 0;
    try {
      if (Buffer.isBuffer(object.content)) {
        await fse.writeFile(tmp, object.content);
        md5.update(object.content);
        size = object.content.length;
      } else {
        if (isAwsChunked(object.content)) dropAwsChunkedEncoding(object.metadata);
        await new Promise((resolve, reject) => {
          pipeline(
            ...bodyStages(object.content),
            new Transform({
              transform(chunk, encoding, callback) {
                md5.update(chunk, encoding);
                size += chunk.length;
                callback(null, chunk);
              },
            }),
            fs.createWriteStream(tmp),
            err => (err ? reject(err) : resolve()),
          );
        });
      }
      await fse.rename(tmp, objectPath);
    } catch (err) {
      await fse.remove(tmp).catch(() => {});
      throw err;
    }
    const digest = md5.digest('hex');
    await this.putMetadata(object.bucket, object.key, object.metadata, digest);
    return { size, md5: digest };
  };

  const putPart = FilesystemStore.prototype.putPart;
  FilesystemStore.prototype.putPart = function putPartDecoded(bucket, uploadId, partNumber, content) {
    if (!isAwsChunked(content)) return putPart.call(this, bucket, uploadId, partNumber, content);
    const decoder = awsChunkedDecoder();
    pipeline(content, decoder, () => {});
    return putPart.call(this, bucket, uploadId, partNumber, decoder);
  };
}
