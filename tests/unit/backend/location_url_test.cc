#include <gtest/gtest.h>

#include "nodeagent/core/backend/backend.h"

namespace bunker::backend {
namespace {

TEST(LocationUrlTest, ParsesEverySupportedForm) {
  auto f = ParseLocationUrl("file:///srv/backups/");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->scheme, "file");
  EXPECT_EQ(f->path, "/srv/backups");
  auto plain = ParseLocationUrl("/srv/b");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->scheme, "file");
  auto rel = ParseLocationUrl("relative/dir");
  ASSERT_TRUE(rel.ok());
  EXPECT_EQ(rel->path.front(), '/');
  auto n = ParseLocationUrl("nfs://filer.corp:2049/exports/bunker?version=3");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->scheme, "nfs");
  EXPECT_EQ(n->host, "filer.corp");
  EXPECT_EQ(n->port, 2049);
  EXPECT_EQ(n->path, "/exports/bunker");
  EXPECT_EQ(n->query, "version=3");
  auto s = ParseLocationUrl("s3://bucket/prefix/x");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->host, "bucket");
  EXPECT_EQ(s->path, "/prefix/x");
}

TEST(LocationUrlTest, MalformedUrlsAreInvalidArgumentNamingTheUrl) {
  for (const char* url : {"", "ftp://x/y", "s3://", "file://relative", "nfs://host", "nfs://host/",
                          "nfs://host:99999/x", "nfs://host:abc/x", "c:foo"}) {
    auto r = ParseLocationUrl(url);
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << url;
    EXPECT_NE(r.status().message().find(std::string("\"") + url + "\""), std::string::npos)
        << r.status().message();
  }
}

}  // namespace
}  // namespace bunker::backend
