#include "nodeagent/core/mover/maintenance.h"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "nodeagent/core/crypto/crypto.h"
#include "nodeagent/core/mover/block_backup.h"
#include "nodeagent/core/mover/file_backup.h"
#include "nodeagent/core/repo/pack_writer.h"
#include "nodeagent/core/util/failpoint.h"

namespace bunker::mover {

using repo::BlobCodec;
using repo::BlobEntry;
using repo::BlobId;
using repo::BlobType;
using repo::Id;
using repo::ObjectId;
using repo::PackEntries;

namespace {

using IdSet = std::unordered_set<Id, repo::IdHash>;

std::string Label(const repo::SnapshotRef& s) {
  return repo::ShortHex(s.id) + " " + s.snapshot.volume_id + " " + s.snapshot.time;
}

// Objects under a prefix whose last path component is an id, with sizes.
Status ListIds(backend::Backend* b, std::string_view prefix,
               std::map<ObjectId, backend::ObjectInfo>* out, std::vector<std::string>* odd) {
  return b->List(prefix, [&](const backend::ObjectInfo& info) -> Status {
    std::string_view name = info.name;
    name.remove_prefix(name.rfind('/') + 1);
    Result<Id> id = repo::ParseId(name);
    if (id.ok()) {
      (*out)[*id] = info;
    } else if (odd) {
      odd->push_back(info.name);
    }
    return Status::Ok();
  });
}

int64_t NowUnix() { return static_cast<int64_t>(std::time(nullptr)); }

std::string BlobTypeName(BlobType t) {
  switch (t) {
    case BlobType::kData:
      return "data";
    case BlobType::kMeta:
      return "meta (tree or content list)";
  }
  return "unknown (" + std::to_string(static_cast<int>(t)) + ")";
}

}  // namespace

Status VisitSnapshotBlobs(repo::Repository* repo, BlobCodec* codec, const repo::Snapshot& snapshot,
                          const std::function<Status(const BlobId&, BlobType)>& visit) {
  if (snapshot.mode == "block") {
    for (const BlobId& meta : snapshot.content) {
      RETURN_IF_ERROR(visit(meta, BlobType::kMeta));
    }
    ASSIGN_OR_RETURN(std::vector<repo::ChunkRef> chunks, LoadBlockContent(repo, snapshot, codec));
    for (const repo::ChunkRef& c : chunks) {
      if (!repo::IsHole(c.id)) RETURN_IF_ERROR(visit(c.id, BlobType::kData));
    }
    return Status::Ok();
  }
  if (snapshot.mode == "file" && snapshot.tree) {
    return VisitTreeBlobs(repo, codec, *snapshot.tree, visit);
  }
  return Corruption("snapshot of " + snapshot.volume_id + " has unknown mode " + snapshot.mode);
}

bool CheckReport::healthy() const {
  return std::none_of(problems.begin(), problems.end(),
                      [](const CheckProblem& p) { return p.kind != "unreferenced"; });
}

Result<CheckReport> Check(repo::Repository* repo, const CheckOptions& options) {
  CheckReport report;
  backend::Backend* b = repo->backend();
  std::unique_ptr<BlobCodec> codec = repo->NewCodec();

  // 1. Index files: each must hash to its name, open and decode.
  std::map<ObjectId, backend::ObjectInfo> index_files;
  RETURN_IF_ERROR(ListIds(b, "index/", &index_files, nullptr).Annotate("list index files"));
  report.index_files = index_files.size();
  std::map<ObjectId, std::vector<BlobEntry>> index_packs;  // pack → blobs per the index
  for (const auto& [id, info] : index_files) {
    Result<std::vector<PackEntries>> packs = repo->ReadIndexFile(id, codec.get());
    if (!packs.ok()) {
      report.problems.push_back({"damaged", info.name, packs.status().message(), {}});
      continue;
    }
    for (PackEntries& p : *packs) {
      repo->index().AddPack(p);
      auto& blobs = index_packs[p.pack];
      blobs.insert(blobs.end(), p.blobs.begin(), p.blobs.end());
    }
  }

  // 2. Packs: every indexed pack exists and is big enough; others are unreferenced.
  std::map<ObjectId, backend::ObjectInfo> packs;
  RETURN_IF_ERROR(ListIds(b, "data/", &packs, nullptr).Annotate("list packs"));
  report.packs = packs.size();
  std::set<ObjectId> bad_packs;
  IdSet bad_blobs;
  for (const auto& [pack, blobs] : index_packs) {
    auto it = packs.find(pack);
    if (it == packs.end()) {
      report.problems.push_back({"missing",
                                 repo::PackName(pack),
                                 "the index lists it but the location has no such object",
                                 {}});
      bad_packs.insert(pack);
      continue;
    }
    uint64_t end = 0;
    for (const BlobEntry& e : blobs) end = std::max<uint64_t>(end, uint64_t{e.offset} + e.length);
    if (end + repo::kPackFooterSize > it->second.size) {
      report.problems.push_back(
          {"damaged",
           it->second.name,
           "shorter (" + std::to_string(it->second.size) + " bytes) than its blobs need",
           {}});
      bad_packs.insert(pack);
    }
  }
  for (const auto& [pack, info] : packs) {
    if (!index_packs.contains(pack)) {
      report.problems.push_back({"unreferenced",
                                 info.name,
                                 "in no index (left by an interrupted backup); prune removes it",
                                 {}});
    }
  }

  // 3. Read data: whole packs, hash, trailer, every blob; compare with the index.
  if (options.read_data) {
    std::vector<ObjectId> to_read;
    for (const auto& [pack, blobs] : index_packs) {
      if (packs.contains(pack) && !bad_packs.contains(pack)) to_read.push_back(pack);
    }
    if (options.read_data_slices > 0) {
      const uint32_t t = options.read_data_slices;
      if (options.read_data_slice < 1 || options.read_data_slice > t) {
        return InvalidArgument("read-data slice " + std::to_string(options.read_data_slice) +
                               " of " + std::to_string(t) + " does not exist");
      }
      std::erase_if(to_read, [&](const ObjectId& p) {
        uint32_t v = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
        return v % t != options.read_data_slice - 1;
      });
    } else if (options.read_data_percent < 100) {
      std::mt19937_64 rng(std::random_device{}());
      std::shuffle(to_read.begin(), to_read.end(), rng);
      size_t keep = static_cast<size_t>(
          std::ceil(to_read.size() * std::max(0.0, options.read_data_percent) / 100.0));
      to_read.resize(std::min(keep, to_read.size()));
    }
    if (options.progress) {
      uint64_t total = 0;
      for (const ObjectId& p : to_read) total += packs[p].size;
      options.progress->bytes_total = total;
    }
    std::mutex mu;  // guards report, bad_packs, bad_blobs
    std::atomic<size_t> next{0};
    auto reader = [&] {
      std::unique_ptr<BlobCodec> c = repo->NewCodec();
      for (size_t i = next++; i < to_read.size(); i = next++) {
        const ObjectId& pack = to_read[i];
        std::string name = repo::PackName(pack);
        auto damaged = [&](std::string detail, const std::vector<BlobEntry>* blobs) {
          std::lock_guard lock(mu);
          report.problems.push_back({"damaged", name, std::move(detail), {}});
          bad_packs.insert(pack);
          if (blobs) {
            for (const BlobEntry& e : *blobs) bad_blobs.insert(e.id);
          }
        };
        Result<Bytes> data = b->Get(name);
        if (!data.ok()) {
          damaged("cannot be read: " + data.status().ToString(), &index_packs[pack]);
          continue;
        }
        if (options.progress) options.progress->bytes_done += data->size();
        {
          std::lock_guard lock(mu);
          ++report.packs_read;
          report.bytes_read += data->size();
        }
        Result<uint32_t> trailer_len =
            data->size() < repo::kPackFooterSize
                ? Result<uint32_t>(Corruption(name + ": too short to be a pack"))
                : repo::DecodePackFooter(
                      ByteSpan(data->data() + data->size() - repo::kPackFooterSize,
                               repo::kPackFooterSize),
                      data->size(), name);
        if (!trailer_len.ok()) {
          damaged(trailer_len.status().message(), &index_packs[pack]);
          continue;
        }
        size_t tail = *trailer_len + repo::kPackFooterSize;
        if (crypto::Sha256(ByteSpan(data->data() + data->size() - tail, tail)) != pack) {
          damaged("trailer does not match the pack's name (SHA-256)", &index_packs[pack]);
          continue;
        }
        Result<std::vector<BlobEntry>> trailer = repo::ReadPackTrailer(c.get(), *data, name);
        if (!trailer.ok()) {
          damaged(trailer.status().message(), &index_packs[pack]);
          continue;
        }
        std::map<BlobId, BlobEntry> in_pack;
        for (const BlobEntry& e : *trailer) in_pack[e.id] = e;
        Bytes plain;
        for (const BlobEntry& e : index_packs[pack]) {
          auto t = in_pack.find(e.id);
          if (t == in_pack.end() || t->second.offset != e.offset || t->second.length != e.length ||
              t->second.type != e.type) {
            std::lock_guard lock(mu);
            report.problems.push_back({"damaged",
                                       name,
                                       "index entry for blob " + repo::ShortHex(e.id) +
                                           " does not match the pack's trailer",
                                       {}});
            bad_blobs.insert(e.id);
            continue;
          }
        }
        for (const BlobEntry& e : *trailer) {
          Status st = c->Decode(e, ByteSpan(data->data() + e.offset, e.length), name, &plain);
          if (!st.ok()) {
            std::lock_guard lock(mu);
            report.problems.push_back({"damaged", name, st.message(), {}});
            bad_blobs.insert(e.id);
          }
        }
      }
    };
    std::vector<std::thread> threads;
    int n = std::max(2u, std::thread::hardware_concurrency());
    for (int i = 1; i < n; ++i) threads.emplace_back(reader);
    reader();
    for (auto& t : threads) t.join();
  }

  // 4. Snapshots: each readable; every blob it references indexed, in a
  // present pack, and not damaged. Problems name the snapshots they affect.
  std::map<ObjectId, backend::ObjectInfo> snaps;
  RETURN_IF_ERROR(ListIds(b, "snapshots/", &snaps, nullptr).Annotate("list snapshots"));
  report.snapshots = snaps.size();
  std::map<std::string, size_t> problem_of;  // object → index in problems
  for (size_t i = 0; i < report.problems.size(); ++i) problem_of[report.problems[i].object] = i;
  for (const auto& [sid, info] : snaps) {
    Result<repo::Snapshot> s = repo->LoadSnapshot(sid, codec.get());
    if (!s.ok()) {
      report.problems.push_back({"damaged", info.name, s.status().message(), {}});
      continue;
    }
    repo::SnapshotRef ref{sid, *s};
    // Objects with problems this snapshot depends on, with the problem to
    // report when no earlier step reported the object.
    std::map<std::string, std::pair<std::string, std::string>> hit;
    IdSet seen;
    Status walk = VisitSnapshotBlobs(repo, codec.get(), *s, [&](const BlobId& id, BlobType type) {
      if (!seen.insert(id).second) return Status::Ok();
      std::optional<repo::BlobLocation> loc = repo->index().Find(id);
      if (!loc) {
        hit.emplace("blob " + repo::ToHex(id),
                    std::pair{"missing", "referenced by a snapshot but in no index"});
        return Status::Ok();
      }
      if (loc->entry.type != type) {
        hit.emplace(
            "blob " + repo::ToHex(id),
            std::pair{"damaged", std::string("indexed as a ") + BlobTypeName(loc->entry.type) +
                                     " blob where a snapshot needs a " + BlobTypeName(type) +
                                     " blob"});
        return Status::Ok();
      }
      if (bad_packs.contains(loc->pack) || bad_blobs.contains(id)) {
        hit.emplace(repo::PackName(loc->pack), std::pair{"damaged", "holds a damaged blob"});
      }
      return Status::Ok();
    });
    // What the walk met before it stopped is attributed either way: a walk
    // stops exactly where a missing or damaged meta blob is needed.
    for (const auto& [obj, problem] : hit) {
      auto it = problem_of.find(obj);
      if (it == problem_of.end()) {
        report.problems.push_back({problem.first, obj, problem.second, {}});
        it = problem_of.emplace(obj, report.problems.size() - 1).first;
      }
      report.problems[it->second].snapshots.push_back(Label(ref));
    }
    if (!walk.ok()) {
      report.problems.push_back(
          {"damaged", info.name, "its content cannot be read: " + walk.message(), {Label(ref)}});
    }
  }
  report.blobs = repo->index().blob_count();
  return report;
}

namespace {

// Resolves forget's --snapshot names against one listing: a full id or a
// unique prefix of >= 6 hex digits, of a readable snapshot (of `volume_id`
// when given) or of a damaged one. Never "latest": which snapshot that is
// changes as backups run, and a damaged newest one would make it another.
Status ResolveForgetNames(const ForgetOptions& options, const std::vector<repo::SnapshotRef>& all,
                          const std::vector<repo::Repository::DamagedSnapshot>& damaged,
                          std::set<ObjectId>* named, std::vector<ObjectId>* named_damaged) {
  for (const std::string& what : options.snapshots) {
    if (!repo::IsIdPrefix(what)) {
      return InvalidArgument("snapshot \"" + what +
                             "\": forget takes a snapshot id or at least 6 of its hex digits "
                             "(not \"latest\": name the one you mean)");
    }
    std::vector<const repo::SnapshotRef*> readable;
    for (const repo::SnapshotRef& s : all) {
      if (repo::ToHex(s.id).starts_with(what)) readable.push_back(&s);
    }
    std::vector<const repo::Repository::DamagedSnapshot*> unreadable;
    for (const auto& d : damaged) {
      if (repo::ToHex(d.id).starts_with(what)) unreadable.push_back(&d);
    }
    if (readable.size() + unreadable.size() > 1) {
      return InvalidArgument("snapshot prefix " + what + " is ambiguous (" +
                             std::to_string(readable.size() + unreadable.size()) + " matches, " +
                             std::to_string(unreadable.size()) + " of them unreadable)");
    }
    if (readable.size() == 1) {
      const repo::SnapshotRef& s = *readable.front();
      if (!options.volume_id.empty() && s.snapshot.volume_id != options.volume_id) {
        return NotFound("no snapshot " + what + " of volume " + options.volume_id + " (it is of " +
                        s.snapshot.volume_id + ")");
      }
      named->insert(s.id);
      continue;
    }
    if (unreadable.empty()) return NotFound("no snapshot " + what);
    const repo::Repository::DamagedSnapshot& d = *unreadable.front();
    if (d.authenticated) {
      // Intact, written with the key, but not understood here: a newer
      // format, not damage. Removing it would lose a good backup.
      return FailedPrecondition("snapshot " + repo::ShortHex(d.id) +
                                " is intact but this build cannot read it (" + d.status.message() +
                                "); it is not removed: use the bunker-agent version that wrote it");
    }
    if (!options.volume_id.empty()) {
      return InvalidArgument("snapshot " + repo::ShortHex(d.id) +
                             " is damaged and its volume cannot be read; name it without "
                             "--volume-id");
    }
    if (std::find(named_damaged->begin(), named_damaged->end(), d.id) == named_damaged->end()) {
      named_damaged->push_back(d.id);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<ForgetReport> Forget(repo::Repository* repo, repo::Lease* lease,
                            const ForgetOptions& options) {
  if (options.snapshots.empty()) {
    if (options.keep_last < 0) return InvalidArgument("--keep-last must be 0 or more");
    if (options.keep_last == 0 && options.volume_id.empty()) {
      return InvalidArgument(
          "--keep-last 0 would remove every snapshot of every volume: name the volume whose "
          "snapshots all go with --volume-id ID, or the snapshots with --snapshot ID");
    }
  }
  ForgetReport report;
  std::set<ObjectId> named;
  std::vector<repo::Repository::DamagedSnapshot> damaged;
  std::vector<repo::SnapshotRef> all;
  if (options.snapshots.empty()) {
    // A policy needs every snapshot's volume and time: a damaged one stops it.
    Result<std::vector<repo::SnapshotRef>> listed = repo->ListSnapshots();
    if (!listed.ok()) {
      return listed.status().code() == Code::kCorruption
                 ? listed.status().Annotated(
                       "forget: nothing removed (a snapshot that cannot be read is removed by "
                       "naming it: forget --snapshot ID)")
                 : listed.status().Annotated("forget: nothing removed");
    }
    all = std::move(*listed);
  } else {
    ASSIGN_OR_RETURN(all, repo->ListSnapshots(&damaged));
    Status st = ResolveForgetNames(options, all, damaged, &named, &report.removed_damaged);
    if (!st.ok()) return st.Annotate("forget: nothing removed");
  }
  std::map<std::string, std::vector<repo::SnapshotRef>> by_volume;
  for (repo::SnapshotRef& s : all) {
    if (!options.volume_id.empty() && s.snapshot.volume_id != options.volume_id) continue;
    by_volume[s.snapshot.volume_id].push_back(std::move(s));
  }
  for (auto& [volume, snaps] : by_volume) {
    if (!options.snapshots.empty()) {
      for (repo::SnapshotRef& s : snaps) {
        (named.contains(s.id) ? report.removed : report.kept).push_back(std::move(s));
      }
      continue;
    }
    // Oldest first; the last keep_last stay.
    size_t remove = snaps.size() > static_cast<size_t>(options.keep_last)
                        ? snaps.size() - options.keep_last
                        : 0;
    for (size_t i = 0; i < snaps.size(); ++i) {
      (i < remove ? report.removed : report.kept).push_back(snaps[i]);
    }
  }
  if (options.dry_run) return report;
  std::vector<ObjectId> doomed;
  for (const repo::SnapshotRef& s : report.removed) doomed.push_back(s.id);
  doomed.insert(doomed.end(), report.removed_damaged.begin(), report.removed_damaged.end());
  for (const ObjectId& id : doomed) {
    RETURN_IF_ERROR(Failpoint("forget.before_delete"));
    if (lease) RETURN_IF_ERROR(lease->CheckValid());
    RETURN_IF_ERROR(repo->backend()->Delete(repo::SnapshotName(id)));
  }
  return report;
}

Result<PruneReport> Prune(repo::Repository* repo, repo::Lease* lease, const PruneOptions& options) {
  const int64_t started = NowUnix();
  backend::Backend* b = repo->backend();
  std::unique_ptr<BlobCodec> codec = repo->NewCodec();
  PruneReport report;

  // Knowledge: every index file and the complete pack listing. Any failure stops prune.
  std::map<ObjectId, backend::ObjectInfo> index_files;
  RETURN_IF_ERROR(ListIds(b, "index/", &index_files, nullptr).Annotate("prune: list index files"));
  std::map<ObjectId, std::vector<BlobEntry>> index_packs;
  for (const auto& [id, info] : index_files) {
    Result<std::vector<PackEntries>> packs = repo->ReadIndexFile(id, codec.get());
    if (!packs.ok()) {
      return packs.Annotated("prune refuses to run: index file " + info.name +
                             " cannot be read (run `check`)");
    }
    for (PackEntries& p : *packs) {
      repo->index().AddPack(p);
      auto& v = index_packs[p.pack];
      v.insert(v.end(), p.blobs.begin(), p.blobs.end());
    }
  }
  std::map<ObjectId, backend::ObjectInfo> packs;
  RETURN_IF_ERROR(ListIds(b, "data/", &packs, nullptr).Annotate("prune: list packs"));
  std::vector<std::string> missing;
  for (const auto& [pack, blobs] : index_packs) {
    if (!packs.contains(pack)) missing.push_back(repo::PackName(pack));
  }
  // An indexed pack shorter than its blobs need, or one blob listed at two
  // places of one pack, means damage or contradicting index files: which
  // copy is right is for `check --read-data` to find out, not for prune to
  // guess (keeping the wrong entry would lose the blob).
  for (const auto& [pack, blobs] : index_packs) {
    auto it = packs.find(pack);
    if (it == packs.end()) continue;
    uint64_t end = 0;
    std::map<BlobId, const BlobEntry*> at;
    for (const BlobEntry& e : blobs) {
      end = std::max<uint64_t>(end, uint64_t{e.offset} + e.length);
      auto [prev, fresh] = at.emplace(e.id, &e);
      if (!fresh && (prev->second->offset != e.offset || prev->second->length != e.length ||
                     prev->second->type != e.type)) {
        return Corruption("prune refuses to run: index files contradict each other on blob " +
                          repo::ShortHex(e.id) + " in " + it->second.name +
                          " (two locations or types) — run `check --read-data`");
      }
    }
    if (end + repo::kPackFooterSize > it->second.size) {
      return Corruption("prune refuses to run: " + it->second.name + " is shorter (" +
                        std::to_string(it->second.size) +
                        " bytes) than the blobs the index lists in it — run `check`");
    }
  }
  if (!missing.empty()) {
    std::string names;
    for (size_t i = 0; i < missing.size() && i < 10; ++i) names += (i ? ", " : "") + missing[i];
    return Corruption("prune refuses to run: the index names " + std::to_string(missing.size()) +
                      " packs the location does not list (" + names +
                      (missing.size() > 10 ? ", …" : "") +
                      "); the listing may be incomplete or data is missing — run `check`");
  }

  // Mark: every blob of every snapshot.
  Result<std::vector<repo::SnapshotRef>> listed = repo->ListSnapshots();
  if (!listed.ok()) {
    return listed.status().Annotated(
        listed.status().code() == Code::kCorruption
            ? "prune refuses to run: the snapshots cannot all be read (run `check`; a snapshot "
              "that cannot be read is removed by naming it: forget --snapshot ID)"
            : "prune refuses to run: the snapshots cannot all be read");
  }
  std::vector<repo::SnapshotRef> snaps = std::move(*listed);
  IdSet used;
  for (const repo::SnapshotRef& s : snaps) {
    Status st = VisitSnapshotBlobs(
        repo, codec.get(), s.snapshot, [&](const BlobId& id, BlobType type) -> Status {
          std::optional<repo::BlobLocation> loc = repo->index().Find(id);
          if (!loc) {
            return Corruption("blob " + repo::ShortHex(id) + " is in no index");
          }
          if (loc->entry.type != type) {
            return Corruption("blob " + repo::ShortHex(id) + " is indexed as a " +
                              BlobTypeName(loc->entry.type) + " blob where a " +
                              BlobTypeName(type) + " blob is needed");
          }
          used.insert(id);
          return Status::Ok();
        });
    if (!st.ok()) {
      return st.Annotate("prune refuses to run: snapshot " + Label(s) + " cannot be fully read");
    }
  }

  // A second listing of snapshots must agree with the first: a store whose
  // listings come back short (restic #4612) must not make prune forget a
  // snapshot's data.
  {
    ASSIGN_OR_RETURN(std::vector<repo::SnapshotRef> again, repo->ListSnapshots());
    std::set<ObjectId> a, b2;
    for (const auto& s : snaps) a.insert(s.id);
    for (const auto& s : again) b2.insert(s.id);
    if (a != b2) {
      return FailedPrecondition(
          "prune refuses to run: two listings of snapshots disagree (" + std::to_string(a.size()) +
          " vs " + std::to_string(b2.size()) +
          " snapshots); the location's listings are unreliable or another process changed "
          "snapshots");
    }
  }

  // Plan per pack: keep, delete (no live blob), or repack (mostly garbage).
  IdSet kept;  // a blob kept once; later copies are garbage
  std::vector<PackEntries> keep_packs;
  std::vector<std::pair<ObjectId, std::vector<BlobEntry>>> repack;
  std::vector<ObjectId> delete_packs;
  for (const auto& [pack, blobs] : index_packs) {
    ++report.packs_total;
    uint64_t size = packs[pack].size;
    report.bytes_before += size;
    uint64_t live_bytes = 0, all_bytes = 0;
    std::vector<BlobEntry> live;
    for (const BlobEntry& e : blobs) {
      all_bytes += e.length;
      if (used.contains(e.id) && !kept.contains(e.id)) {
        live.push_back(e);
        live_bytes += e.length;
      }
    }
    for (const BlobEntry& e : live) kept.insert(e.id);
    report.blobs_removed += blobs.size() - live.size();
    report.blobs_kept += live.size();
    if (live.empty()) {
      delete_packs.push_back(pack);
      ++report.packs_deleted;
    } else if (all_bytes > 0 &&
               1.0 - static_cast<double>(live_bytes) / all_bytes > options.repack_unused_fraction) {
      repack.emplace_back(pack, std::move(live));
      ++report.packs_repacked;
    } else {
      keep_packs.push_back(PackEntries{pack, std::move(live)});
      report.bytes_after += size;
    }
  }
  // Packs in no index, written before this prune started (interrupted backups).
  std::vector<ObjectId> unreferenced;
  for (const auto& [pack, info] : packs) {
    if (!index_packs.contains(pack) && info.mtime_unix < started) unreferenced.push_back(pack);
  }
  report.packs_unreferenced_deleted = unreferenced.size();
  report.index_files_replaced = index_files.size();
  if (options.dry_run) return report;

  // Repack: copy live blobs (verified) into new packs.
  std::vector<PackEntries> new_packs;
  if (!repack.empty()) {
    repo::PackWriter writer(repo, repo::PackWriterOptions{});
    for (const auto& [pack, live] : repack) {
      RETURN_IF_ERROR(
          writer.CopyBlobs(pack, live, codec.get(), [] { return Failpoint("prune.repack.add"); })
              .Annotate("prune: live blob cannot be copied"));
    }
    ASSIGN_OR_RETURN(new_packs, writer.Finish());
    report.packs_written = new_packs.size();
    for (const PackEntries& p : new_packs) {
      ASSIGN_OR_RETURN(backend::ObjectInfo info, b->Stat(repo::PackName(p.pack)));
      report.bytes_after += info.size;
    }
  }

  // New index: everything kept. Then drop the old index files, then the packs.
  std::vector<PackEntries> all = std::move(keep_packs);
  all.insert(all.end(), new_packs.begin(), new_packs.end());
  ObjectId new_index{};
  bool wrote_index = false;
  if (!all.empty()) {
    // The failpoint comes first, so a process frozen there (action `stop`)
    // meets the lease check when it resumes.
    RETURN_IF_ERROR(Failpoint("prune.before_index"));
    if (lease) RETURN_IF_ERROR(lease->CheckValid());
    ASSIGN_OR_RETURN(new_index, repo->SaveIndex(all, codec.get()));
    wrote_index = true;
  }
  for (const auto& [id, info] : index_files) {
    if (wrote_index && id == new_index) continue;
    RETURN_IF_ERROR(Failpoint("prune.delete_index"));
    if (lease) RETURN_IF_ERROR(lease->CheckValid());
    RETURN_IF_ERROR(b->Delete(info.name));
  }
  std::vector<ObjectId> doomed = delete_packs;
  for (const auto& [pack, live] : repack) doomed.push_back(pack);
  doomed.insert(doomed.end(), unreferenced.begin(), unreferenced.end());
  for (size_t i = 0; i < doomed.size(); ++i) {
    RETURN_IF_ERROR(Failpoint("prune.delete_pack"));
    if (lease && i % 64 == 0) RETURN_IF_ERROR(lease->CheckValid());
    RETURN_IF_ERROR(b->Delete(repo::PackName(doomed[i])));
  }
  // What killed writers left half-written (never listed, never referenced).
  if (lease) RETURN_IF_ERROR(lease->CheckValid());
  ASSIGN_OR_RETURN(report.temporaries_removed, b->RemoveStaleTemporaries(started));
  return report;
}

Result<RepoStats> Stats(repo::Repository* repo) {
  RepoStats st;
  RETURN_IF_ERROR(repo->LoadIndex());
  std::map<ObjectId, backend::ObjectInfo> packs;
  RETURN_IF_ERROR(ListIds(repo->backend(), "data/", &packs, nullptr));
  st.packs = packs.size();
  for (const auto& [id, info] : packs) st.stored_bytes += info.size;
  std::vector<repo::Repository::DamagedSnapshot> damaged;  // check reports them
  ASSIGN_OR_RETURN(std::vector<repo::SnapshotRef> snaps, repo->ListSnapshots(&damaged));
  st.snapshots = snaps.size();
  std::set<std::string> volumes;
  for (const repo::SnapshotRef& s : snaps) {
    volumes.insert(s.snapshot.volume_id);
    st.logical_bytes += s.snapshot.size;
  }
  st.volumes = volumes.size();
  st.blobs = repo->index().blob_count();
  st.unique_raw_bytes = repo->index().raw_bytes();
  return st;
}

}  // namespace bunker::mover
