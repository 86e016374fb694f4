// bunker-test-serve: one harness server for scripts (tests/bench/run.sh), so
// they start nfs-ganesha and s3rver exactly as the tests do (rpcbind sharing,
// registration lock, s3rver's fixes) instead of a second copy in shell.
//
//   bunker-test-serve nfs|s3
//
// Starts the server, prints what a client needs as KEY=VALUE lines on stdout,
// then "ready", and serves until SIGTERM or SIGINT; then stops the server and
// removes its directory (exit 0). Exit 1 with the reason on stderr when the
// server cannot start. The directory is created under $TMPDIR (default /tmp).
//
//   nfs: url (nfs:// URL of the export root, ports included), export_dir,
//        nfs_port, mount_port
//   s3:  endpoint, bucket, data_dir, port, access_key, secret_key, region

#include <signal.h>

#include <iostream>
#include <memory>
#include <string>

#include "tests/harness/nfs_server.h"
#include "tests/harness/s3_server.h"

namespace {

int Fail(const bunker::Status& status) {
  std::cerr << "bunker-test-serve: " << status.ToString() << "\n";
  return 1;
}

// Waits for SIGTERM or SIGINT, blocked in `set` since the start (children
// get an empty mask from Process::Start, so they still stop on SIGTERM).
void WaitForStop(const sigset_t& set) {
  int sig = 0;
  sigwait(&set, &sig);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace bunker::testing;
  const std::string what = argc == 2 ? argv[1] : "";
  if (what != "nfs" && what != "s3") {
    std::cerr << "usage: bunker-test-serve nfs|s3\n";
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  if (what == "nfs") {
    bunker::Result<std::unique_ptr<NfsServer>> nfs = NfsServer::Start();
    if (!nfs.ok()) return Fail(nfs.status());
    std::cout << "url=" << (*nfs)->Url() << "\nexport_dir=" << (*nfs)->export_dir().string()
              << "\nnfs_port=" << (*nfs)->nfs_port() << "\nmount_port=" << (*nfs)->mount_port()
              << "\nready" << std::endl;
    WaitForStop(set);
    return 0;
  }
  bunker::Result<std::unique_ptr<S3Server>> s3 = S3Server::Start();
  if (!s3.ok()) return Fail(s3.status());
  std::cout << "endpoint=" << (*s3)->endpoint() << "\nbucket=" << (*s3)->bucket()
            << "\ndata_dir=" << (*s3)->data_dir().string() << "\nport=" << (*s3)->port()
            << "\naccess_key=" << (*s3)->access_key() << "\nsecret_key=" << (*s3)->secret_key()
            << "\nregion=" << (*s3)->region() << "\nready" << std::endl;
  WaitForStop(set);
  return 0;
}
