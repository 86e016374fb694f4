#pragma once

// bunkerctl's nouns and verbs: registers every subcommand on the CLI11 app.
// Parsing a command line selects one Action (through the subcommand's
// callback); main runs it once the Session is set up. Actions print their
// result on stdout in the session's format and return an exit code
// (session.h); errors are printed by the Session.
//
// Thread-safety: single-threaded; the options bound to flags live as long as
// the app (they are owned by the registered callbacks).

#include <CLI/CLI.hpp>
#include <functional>

#include "appliance/bunkerctl/session.h"

namespace bunker::bunkerctl {

using Action = std::function<int(Session&)>;

// Adds login, cluster, location, policy, rule, backup, restore, user, group
// and grant to `app`; the parsed command's action is stored in `*selected`.
void AddCommands(CLI::App& app, Action* selected);

}  // namespace bunker::bunkerctl
