// Writes the seed corpora of the fuzz harnesses: valid objects made by the
// real encoders (sealed ones with the harnesses' test key), in each harness's
// input layout (see the comment at the top of each *_fuzzer.cc), plus a few
// edge cases. Usage: fuzz_seed_writer DIR — writes DIR/<harness>/<seed>.
// tests/fuzz/run.sh --write-seeds runs it into tests/fuzz/corpus.

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nodeagent/core/chunk/compress.h"
#include "nodeagent/core/crypto/crypto.h"
#include "nodeagent/core/mover/file_tree.h"
#include "nodeagent/core/repo/codec.h"
#include "nodeagent/core/repo/decoders.h"
#include "nodeagent/core/repo/snapshot.h"
#include "tests/fuzz/fuzz_target.h"

#if BUNKER_FUZZ_HAVE_S3_XML
#include "nodeagent/core/backend/s3_xml.h"
#endif

namespace bunker::fuzz {
namespace {

std::string g_dir;

void Write(const std::string& harness, const std::string& name, ByteSpan data) {
  std::string dir = g_dir + "/" + harness;
  ::mkdir(dir.c_str(), 0755);
  std::ofstream f(dir + "/" + name, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!f) {
    std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
    std::exit(1);
  }
}

void Write(const std::string& harness, const std::string& name, std::string_view text) {
  Write(harness, name, AsBytes(text));
}

Bytes Cat(std::initializer_list<ByteSpan> parts) {
  Bytes out;
  for (ByteSpan p : parts) PutBytes(&out, p);
  return out;
}

Bytes U8(uint8_t v) { return Bytes{v}; }

repo::Id IdOf(uint8_t fill) {
  repo::Id id;
  id.fill(fill);
  return id;
}

void Check(const Status& st, const char* what) {
  if (!st.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, st.ToString().c_str());
    std::exit(1);
  }
}

// Three stored blobs as backup makes them: data (compressible), data
// (incompressible), meta.
struct StoredBlobs {
  std::vector<repo::BlobEntry> entries;
  std::vector<Bytes> plain;
  Bytes stored;  // concatenated, as in a pack
};

StoredBlobs MakeBlobs(repo::BlobCodec* codec) {
  StoredBlobs b;
  Bytes compressible(3000);
  for (size_t i = 0; i < compressible.size(); ++i) compressible[i] = static_cast<uint8_t>(i % 7);
  Bytes random(200);
  Check(crypto::RandomBytes(random), "random");
  std::string meta = mover::EncodeContentBlob(std::vector<mover::ContentRef>{{IdOf(7), 0}});
  b.plain = {compressible, random, Bytes(meta.begin(), meta.end())};
  repo::BlobType types[] = {repo::BlobType::kData, repo::BlobType::kData, repo::BlobType::kMeta};
  for (size_t i = 0; i < b.plain.size(); ++i) {
    repo::BlobEntry e;
    e.id = codec->ComputeId(b.plain[i]);
    e.type = types[i];
    e.offset = static_cast<uint32_t>(b.stored.size());
    e.raw_length = static_cast<uint32_t>(b.plain[i].size());
    Check(codec->Encode(e.type, e.id, b.plain[i], /*verify=*/true, &b.stored, &e.flags), "encode");
    e.length = static_cast<uint32_t>(b.stored.size() - e.offset);
    b.entries.push_back(e);
  }
  return b;
}

// A pack as PackWriter::SealCurrentLocked writes it.
Bytes MakePack(repo::BlobCodec* codec, const StoredBlobs& b) {
  Bytes pack = b.stored;
  Bytes trailer;
  Check(codec->Seal(repo::kAadTrailer, repo::EncodeTrailer(b.entries), &trailer), "seal");
  PutU32(&trailer, static_cast<uint32_t>(trailer.size()));
  trailer.insert(trailer.end(), repo::kPackMagic, repo::kPackMagic + 4);
  PutBytes(&pack, trailer);
  return pack;
}

Bytes U64Le(uint64_t v) {
  Bytes out;
  PutU64(&out, v);
  return out;
}

void Codec(repo::BlobCodec* codec) {
  StoredBlobs b = MakeBlobs(codec);
  Bytes trailer = repo::EncodeTrailer(b.entries);

  // trailer: blobs_size(u64) || plaintext
  Write("trailer", "three_blobs", Cat({U64Le(b.stored.size()), trailer}));
  Write("trailer", "empty", Cat({U64Le(0), repo::EncodeTrailer({})}));
  Bytes future = trailer;
  future[0] = 2;
  Write("trailer", "version_2", Cat({U64Le(b.stored.size()), future}));
  Bytes huge_count = repo::EncodeTrailer({});
  huge_count[4] = huge_count[5] = huge_count[6] = huge_count[7] = 0xff;
  Write("trailer", "count_ffffffff", Cat({U64Le(0), huge_count}));

  // pack: mode(u8) || …
  Bytes pack = MakePack(codec, b);
  Write("pack", "real_pack", Cat({U8(0), pack}));
  Write("pack", "footer_only", Cat({U8(0), ByteSpan(pack).last(8)}));
  Write("pack", "footer_and_size", Cat({U8(1), ByteSpan(pack).last(8), U64Le(pack.size())}));
  Write("pack", "footer_size_too_small", Cat({U8(1), ByteSpan(pack).last(8), U64Le(40)}));
  Write(
      "pack", "built_three_blobs",
      Cat({U8(2),
           Bytes{static_cast<uint8_t>(b.stored.size()), static_cast<uint8_t>(b.stored.size() >> 8)},
           trailer}));

  // index: plaintext
  repo::PackEntries p1{IdOf(1), b.entries};
  repo::PackEntries p2{IdOf(2), {b.entries[0]}};
  Bytes index = repo::EncodeIndex({p1, p2});
  Write("index", "two_packs", index);
  Write("index", "empty", repo::EncodeIndex({}));
  Write("index", "truncated", ByteSpan(index).first(index.size() - 5));

  // content_list: plaintext
  std::vector<repo::ChunkRef> chunks = {{IdOf(3), {}}, {repo::kHoleId, {}}, {IdOf(4), {}}};
  chunks[0].fp.fill(9);
  chunks[2].fp.fill(8);
  Write("content_list", "three_chunks", repo::EncodeContentList(chunks));
  Write("content_list", "empty", repo::EncodeContentList({}));

  // blob: mode || type || flags || raw_length(u32) || id(32) || payload
  for (size_t i = 0; i < b.entries.size(); ++i) {
    const repo::BlobEntry& e = b.entries[i];
    Bytes head;
    PutU8(&head, static_cast<uint8_t>(e.type));
    PutU8(&head, e.flags);
    PutU32(&head, e.raw_length);
    PutBytes(&head, e.id);
    ByteSpan stored = ByteSpan(b.stored).subspan(e.offset, e.length);
    Write("blob", "stored_" + std::to_string(i), Cat({U8(0), head, stored}));
    // Mode 1: the payload before sealing.
    Bytes payload = b.plain[i];
    if (e.flags & repo::kFlagLz4) {
      Bytes compressed;
      chunk::Lz4Compress(b.plain[i], &compressed);
      payload = compressed;
    }
    Write("blob", "payload_" + std::to_string(i), Cat({U8(1), head, payload}));
  }

  // sealed: kind(u8) || stored object
  Bytes sealed_index;
  Check(codec->Seal(repo::kAadIndex, index, &sealed_index), "seal");
  Write("sealed", "index", Cat({U8(0), sealed_index}));
  Write("sealed", "index_as_snapshot", Cat({U8(1), sealed_index}));
  Bytes sealed_trailer;
  Check(codec->Seal(repo::kAadTrailer, trailer, &sealed_trailer), "seal");
  Write("sealed", "trailer", Cat({U8(2), sealed_trailer}));
}

repo::Snapshot BlockSnapshot() {
  repo::Snapshot s;
  s.volume_id = "pvc-1c7e";
  s.mode = "block";
  s.time = "2026-11-25T22:00:00.123Z";
  s.host = "node-1";
  s.tags = {{"app", "db"}, {"tier", "gold"}};
  s.kind = "incremental";
  s.parent = IdOf(0x5a);
  s.size = (uint64_t{5} << 30) + 12345;
  s.chunk_size = 1 << 20;
  s.content = {IdOf(1), IdOf(2)};
  s.stats.bytes_read = s.size;
  s.stats.bytes_new = 1 << 20;
  s.stats.blobs_new = 3;
  s.stats.duration_seconds = 12.5;
  return s;
}

void Snapshots(repo::BlobCodec* codec) {
  repo::Snapshot block = BlockSnapshot();
  std::string block_json = repo::EncodeSnapshotJson(block);
  Write("snapshot", "block", block_json);
  repo::Snapshot file;
  file.volume_id = "pvc-data";
  file.mode = "file";
  file.time = "2026-11-25T22:00:00.000Z";
  file.kind = "full";
  file.tree = IdOf(0x33);
  Write("snapshot", "file", repo::EncodeSnapshotJson(file));
  Write("snapshot", "version_2",
        R"({"version":2,"volume_id":"v","mode":"file","time":"t","kind":"full","tree":")" +
            repo::ToHex(IdOf(1)) + R"("})");
  Write("snapshot", "empty_object", "{}");

  Bytes sealed;
  Check(codec->Seal(repo::kAadSnapshot, AsBytes(block_json), &sealed), "seal");
  Write("sealed", "snapshot", Cat({U8(1), sealed}));

  // Leases: the JSON Lease::Write produces.
  nlohmann::json lease = {{"holder", "node-1:4242"},
                          {"host", "node-1"},
                          {"pid", 4242},
                          {"boot_id", "9b1c6a1e-4f7e-4a57-9a64-2b9d1f0e7c11"},
                          {"pid_ns", "pid:[4026531836]"},
                          {"operation", "backup"},
                          {"exclusive", false},
                          {"nonce", "00112233445566778899aabbccddeeff"},
                          {"created", 1795651200},
                          {"expires", 1795651500}};
  std::string lease_json = lease.dump();
  Write("lease", "shared", Cat({U8(0), AsBytes(lease_json)}));
  lease["exclusive"] = true;
  lease["expires"] = 4102444800;  // 2100: live
  Write("lease", "exclusive_live", Cat({U8(0), AsBytes(lease.dump())}));
  Write("lease", "not_sealed", Cat({U8(1), AsBytes(lease_json)}));
  Write("lease", "empty_object", Cat({U8(0), AsBytes("{}")}));
  Bytes sealed_lease;
  Check(codec->Seal(repo::kAadLease, AsBytes(lease_json), &sealed_lease), "seal");
  Write("sealed", "lease", Cat({U8(3), sealed_lease}));
}

void KeysAndConfig() {
  repo::KdfParams kdf;
  kdf.n = 1024;
  kdf.r = 8;
  kdf.p = 1;
  Result<Bytes> key = repo::EncodeKeyFile(TestMasterKey(), IdOf(0x42), "password", "seed", kdf);
  Check(key.status(), "key file");
  Write("keyfile", "valid", *key);
  Write(
      "keyfile", "n_too_large",
      R"({"version":1,"kdf":"scrypt","n":2097152,"r":8,"p":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA==","data":""})");
  Write("keyfile", "missing_data", R"({"version":1,"kdf":"scrypt","n":1024,"r":8,"p":1})");

  repo::RepoConfig c;
  c.id = IdOf(0x42);
  c.created = "2026-11-25T22:00:00.000Z";
  Write("config", "default", repo::EncodeConfig(c));
  c.version = 2;
  Write("config", "version_2", repo::EncodeConfig(c));
  Write("config", "other_format", R"({"format":"restic","version":1})");
}

void Trees() {
  using mover::Node;
  using mover::NodeType;
  auto meta = [](Node n) {
    n.mode = 0644;
    n.uid = 1000;
    n.gid = 1000;
    n.mtime_ns = 1795651200123456789;
    n.ctime_ns = -5;
    n.inode = 77;
    n.links = 1;
    return n;
  };
  std::vector<Node> nodes;
  Node file = meta({});
  file.name = "a.txt";
  file.type = NodeType::kFile;
  file.size = 4096 + 10;
  file.content = {{IdOf(1), 0}, {repo::kHoleId, 4096}};
  file.xattrs = {{"user.k", Bytes{1, 2, 3}}};
  file.links = 2;
  nodes.push_back(file);
  Node big = meta({});
  big.name = "big";
  big.type = NodeType::kFile;
  big.size = uint64_t{1} << 40;
  big.content_blobs = {IdOf(2), IdOf(3)};
  nodes.push_back(big);
  Node dev = meta({});
  dev.name = "dev";
  dev.type = NodeType::kCharDev;
  dev.rdev = 1024;
  nodes.push_back(dev);
  Node fifo = meta({});
  fifo.name = "fifo";
  fifo.type = NodeType::kFifo;
  nodes.push_back(fifo);
  Node hard = meta({});
  hard.name = "h";
  hard.type = NodeType::kHardlink;
  hard.link_to = "a.txt";
  nodes.push_back(hard);
  Node link = meta({});
  link.name = "l";
  link.type = NodeType::kSymlink;
  link.target = "../../etc/passwd";
  nodes.push_back(link);
  Node sub = meta({});
  sub.name = "sub";
  sub.type = NodeType::kDir;
  sub.mode = 02755;
  sub.subtree = IdOf(4);
  nodes.push_back(sub);
  Node bin = meta({});
  bin.name = "z\xff\xfe";  // not UTF-8: stored as name_b64
  bin.type = NodeType::kSocket;
  nodes.push_back(bin);

  std::vector<std::string> jsons;
  for (const Node& n : nodes) jsons.push_back(mover::EncodeNodeJson(n));
  Node root = meta({});
  root.type = NodeType::kDir;
  root.mode = 0755;
  root.links = 3;
  repo::BlobId next = IdOf(5);
  Write("tree", "root_page", mover::EncodeTreePage(jsons, &root, &next));
  Write("tree", "one_file", mover::EncodeTreePage(std::span(jsons).first(1), nullptr, nullptr));
  Write("tree", "empty", mover::EncodeTreePage({}, nullptr, nullptr));
  Write(
      "tree", "dot_dot_name",
      R"({"version":1,"nodes":[{"name":"..","type":"fifo","mode":420,"uid":0,"gid":0,"mtime_ns":0,"ctime_ns":0,"inode":1,"links":1}]})");
  Write("tree", "unsorted",
        mover::EncodeTreePage(std::vector<std::string>{jsons[1], jsons[0]}, nullptr, nullptr));

  Write("content_blob", "three_entries",
        mover::EncodeContentBlob(std::vector<mover::ContentRef>{
            {IdOf(1), 0}, {repo::kHoleId, 9223372036854775807ull}, {IdOf(2), 0}}));
  Write("content_blob", "empty", mover::EncodeContentBlob({}));
  Write("content_blob", "two_holes", R"({"version":1,"content":["hole:1","hole:2"]})");
}

void Urls() {
  Write("location_url", "file", "file:///srv/backups/");
  Write("location_url", "plain_relative", "backups/dir");
  Write("location_url", "nfs", "nfs://filer.corp:2049/exports/bunker?version=3");
  Write("location_url", "nfs_ipv6", "nfs://[fd00::1]:2049/export");
  Write("location_url", "s3", "s3://bucket/prefix/x");
  Write("location_url", "bad_port", "s3://bucket:99999/p");
}

#if BUNKER_FUZZ_HAVE_S3_XML
void S3Xml() {
  namespace x = backend::s3xml;
  Write("s3_xml", "list",
        R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken><Contents><Key>p/data/3f/a%20b+c</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified><ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key><![CDATA[p/k&1]]></Key><Size>0</Size></Contents></ListBucketResult>)");
  Write(
      "s3_xml", "error",
      R"(<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The resource you requested does not exist &#x263A; &#9731;</Message><Resource>/mybucket/myfoto.jpg</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>)");
  Write(
      "s3_xml", "initiate",
      R"(<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId></InitiateMultipartUploadResult>)");
  Write(
      "s3_xml", "complete",
      R"(<CompleteMultipartUploadResult><Location>http://b/k</Location><Bucket>b</Bucket><Key>k</Key><ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag></CompleteMultipartUploadResult>)");
  Write(
      "s3_xml", "delete_result",
      R"(<DeleteResult><Deleted><Key>a</Key></Deleted><Error><Key>b</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error><!-- c --></DeleteResult>)");
  Write("s3_xml", "delete_body", x::BuildDeleteObjects({"a&b", "<c>"}, true));
  Write("s3_xml", "complete_body", x::BuildCompleteMultipartUpload({{1, "\"e1\""}, {2, "\"e2\""}}));
  Write("s3_xml", "doctype", R"(<!DOCTYPE x [<!ENTITY a "aaaa">]><Error><Code>&a;</Code></Error>)");
}
#endif

}  // namespace
}  // namespace bunker::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  bunker::fuzz::g_dir = argv[1];
  ::mkdir(argv[1], 0755);
  bunker::repo::BlobCodec codec(bunker::fuzz::TestMasterKey());
  bunker::fuzz::Codec(&codec);
  bunker::fuzz::Snapshots(&codec);
  bunker::fuzz::KeysAndConfig();
  bunker::fuzz::Trees();
  bunker::fuzz::Urls();
#if BUNKER_FUZZ_HAVE_S3_XML
  bunker::fuzz::S3Xml();
#endif
  return 0;
}
