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
  auto v6 = ParseLocationUrl("nfs://[fd00::12]:2049/exports/bunker");
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_EQ(v6->host, "fd00::12");  // without brackets: what the resolver takes
  EXPECT_EQ(v6->port, 2049);
  EXPECT_EQ(v6->path, "/exports/bunker");
  auto v6_no_port = ParseLocationUrl("nfs://[::1]/e");
  ASSERT_TRUE(v6_no_port.ok()) << v6_no_port.status().ToString();
  EXPECT_EQ(v6_no_port->host, "::1");
  EXPECT_EQ(v6_no_port->port, 0);
  auto v4 = ParseLocationUrl("nfs://192.0.2.7:20490/e");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "192.0.2.7");
  EXPECT_EQ(v4->port, 20490);
  auto s = ParseLocationUrl("s3://bucket/prefix/x");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->host, "bucket");
  EXPECT_EQ(s->path, "/prefix/x");
}

TEST(LocationUrlTest, MalformedUrlsAreInvalidArgumentNamingTheUrl) {
  for (const char* url :
       {"", "ftp://x/y", "s3://", "file://relative", "nfs://host", "nfs://host/",
        "nfs://host:99999/x", "nfs://host:abc/x", "c:foo", "nfs://fd00::1/e", "nfs://[fd00::1/e",
        "nfs://[fd00::1]x/e", "nfs://[]/e", "nfs://[fd00::1]:/e", "nfs://[not-an-ip]/e",
        "nfs://host:-1/e", "nfs://host:+80/e", "s3://[::1]/b"}) {
    auto r = ParseLocationUrl(url);
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << url;
    EXPECT_NE(r.status().message().find(std::string("\"") + url + "\""), std::string::npos)
        << r.status().message();
  }
}

}  // namespace
}  // namespace bunker::backend
