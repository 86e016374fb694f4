#include "nodeagent/core/repo/snapshot.h"

#include <gtest/gtest.h>

namespace bunker::repo {
namespace {

Snapshot Sample() {
  Snapshot s;
  s.volume_id = "pvc-db";
  s.mode = "block";
  s.time = "2026-11-25T22:00:00.123Z";
  s.host = "node-1";
  s.tags = {{"app", "db"}};
  s.kind = "incremental";
  Id parent;
  parent.fill(7);
  s.parent = parent;
  s.size = 3 << 20;
  s.chunk_size = 1 << 20;
  Id meta;
  meta.fill(9);
  s.content = {meta};
  s.stats.bytes_new = 42;
  s.stats.duration_seconds = 1.5;
  return s;
}

TEST(SnapshotTest, JsonRoundTrip) {
  Snapshot s = Sample();
  std::string json = EncodeSnapshotJson(s);
  Result<Snapshot> back = DecodeSnapshotJson(AsBytes(json), "snapshots/x");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->volume_id, "pvc-db");
  EXPECT_EQ(back->kind, "incremental");
  EXPECT_EQ(back->parent, s.parent);
  EXPECT_EQ(back->size, s.size);
  EXPECT_EQ(back->content, s.content);
  EXPECT_EQ(back->tags, s.tags);
  EXPECT_EQ(back->stats.bytes_new, 42u);
  EXPECT_DOUBLE_EQ(back->stats.duration_seconds, 1.5);
}

TEST(SnapshotTest, BadInputIsCorruptionNamingTheObject) {
  const char* bad[] = {
      "",
      "[]",
      "{",
      R"({"version": 2, "volume_id": "v", "mode": "block", "time": "t", "kind": "full"})",
      R"({"version": 1, "volume_id": 5, "mode": "block", "time": "t", "kind": "full"})",
      R"({"version": 1, "volume_id": "v", "mode": "tape", "time": "t", "kind": "full"})",
      R"({"version": 1, "volume_id": "v", "mode": "block", "time": "t", "kind": "full",
          "size": 5000000, "chunk_size": 1048576, "content": []})",
      R"({"version": 1, "volume_id": "v", "mode": "block", "time": "t", "kind": "full",
          "size": 1, "chunk_size": 0, "content": []})",
      R"({"version": 1, "volume_id": "v", "mode": "block", "time": "t", "kind": "full",
          "size": 1, "chunk_size": 4096, "content": ["zz"]})",
      R"({"version": 1, "volume_id": "v", "mode": "file", "time": "t", "kind": "full"})",
  };
  for (const char* text : bad) {
    Result<Snapshot> r = DecodeSnapshotJson(AsBytes(text), "snapshots/abc");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), Code::kCorruption) << text;
    EXPECT_NE(r.status().message().find("snapshots/abc"), std::string::npos) << text;
  }
}

TEST(SnapshotTest, NewerVersionIsNamed) {
  Result<Snapshot> r = DecodeSnapshotJson(
      AsBytes(R"({"version": 3, "volume_id": "v", "mode": "block", "time": "t", "kind": "full"})"),
      "snapshots/abc");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("version 3"), std::string::npos);
}

}  // namespace
}  // namespace bunker::repo
