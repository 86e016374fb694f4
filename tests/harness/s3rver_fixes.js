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
// Here an object is written to a temporary file next to it and renamed over
// it once complete, then its metadata is written, then the PUT is answered:
// atomic, read-after-write, as S3 is. A temporary file never ends in
// "._S3rver_object", so listings skip it. Nothing else changes.
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
        await new Promise((resolve, reject) => {
          pipeline(
            object.content,
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
}
