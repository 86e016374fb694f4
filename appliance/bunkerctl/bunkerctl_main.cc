// bunkerctl: the command line for bunkerd's REST API. Only wiring: global
// options, the commands (commands.h), the session (session.h).

#include <CLI/CLI.hpp>
#include <string>

#include "appliance/bunkerctl/commands.h"
#include "appliance/bunkerctl/session.h"

int main(int argc, char** argv) {
  using namespace bunker::bunkerctl;
  CLI::App app{"bunkerctl: manage a Bunker appliance (bunkerd) over its REST API"};
  app.require_subcommand(1);
  app.fallthrough();  // global options are accepted after the subcommands too
  SessionOptions options;
  app.add_option("--config", options.config_path,
                 "Config file (default $BUNKER_CONFIG, else ~/.config/bunker/config.yaml)");
  app.add_option("--server", options.server, "bunkerd URL, https://host:port");
  app.add_option("--ca-file", options.ca_file, "PEM CA certificates to verify bunkerd with");
  app.add_flag("--insecure-skip-tls-verify", options.insecure_skip_tls_verify,
               "Do not verify bunkerd's certificate (only when asked; never the default)");
  app.add_option("-o,--output", options.output, "table, json or yaml")->capture_default_str();

  Action selected;
  AddCommands(app, &selected);
  app.footer(
      std::string("Objects are named by name or id everywhere (a name of digits only is read as an "
                  "id).\n"
                  "Secrets (passwords, kubeconfigs, S3 keys) are read from files or stdin, never "
                  "from arguments.\n"
                  "Examples:\n"
                  "  bunkerctl login --server https://bunker.corp:8443 --ca-file ca.pem -u admin\n"
                  "  bunkerctl cluster create prod --kubeconfig ~/.kube/config\n"
                  "  bunkerctl location create nfs1 --type nfs --url nfs://nas/export/bunker "
                  "--repository-password-file repo.pw\n"
                  "  bunkerctl policy create nightly --daily 02:30 --retain 7 --incrementals 6\n"
                  "  bunkerctl backup create app1 --cluster prod --location nfs1 --namespace app1 "
                  "--pre-rule freeze-db\n"
                  "  bunkerctl restore create r1 --backup app1 --cluster dr --map-namespace "
                  "app1=app1-dr --map-storage-class fast=standard\n"
                  "  bunkerctl backup list -o json\n"
                  "Run bunkerctl NOUN VERB --help for each command's flags and examples.\n\n") +
      kExitCodesHelp);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (!selected) {
    return kExitUsage;
  }
  Session session;
  if (int rc = session.Setup(options); rc != kExitOk) {
    return rc;
  }
  return selected(session);
}
