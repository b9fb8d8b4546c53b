#include "server/model_repository.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/store/interaction_store.h"
#include "core/util/crc32c.h"
#include "debias/v1/model_service.pb.h"
#include "server/model_services.h"
#include "spdlog/spdlog.h"

namespace debias::server {
namespace {

namespace fs = std::filesystem;

// "LABEL VERSION" lines; a malformed line is skipped with a warning.
std::map<std::string, uint64_t> ReadLabels(const std::string& path) {
  std::map<std::string, uint64_t> labels;
  std::ifstream in(path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string label, version_text;
    uint64_t version = 0;
    fields >> label >> version_text;
    if (!store::ValidateModelName(label, "label").ok() ||
        !absl::SimpleAtoi(version_text, &version) || version == 0) {
      spdlog::warn("model repository: {}:{}: expected 'LABEL VERSION', skipped", path, n);
      continue;
    }
    labels[label] = version;
  }
  return labels;
}

}  // namespace

ModelRepository::ModelRepository(ModelManager* models, Options options)
    : models_(models), options_(std::move(options)) {}

ModelRepository::~ModelRepository() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void ModelRepository::Start() {
  thread_ = std::thread([this] {
    do {
      Scan();
    } while (!stop_.WaitForNotificationWithTimeout(options_.poll));
  });
}

size_t ModelRepository::serving() const {
  absl::MutexLock l(&mu_);
  return loaded_.size();
}

absl::StatusOr<uint64_t> ModelRepository::Load(const std::string& path, const Key& key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot read the file");
  v1::ModelSnapshotFile file;
  if (!file.ParseFromIstream(&in) || !file.has_header()) {
    return absl::DataLossError("not a ModelSnapshotFile (truncated or corrupt)");
  }
  auto record = CheckSnapshotHeader(file.header(), int64_t{1} << 62);
  if (!record.ok()) return record.status();
  if (auto s = CheckSnapshotParameters(file.header(), file.parameters().size(),
                                       util::Crc32c(file.parameters()));
      !s.ok()) {
    return s;
  }
  ImportOptions import;
  import.name = key.first;
  import.version = key.second;
  import.servable = false;  // not before its warm-up
  auto id = models_->Import(std::move(*record), file.parameters(), file.header().server_version(),
                            import);
  if (!id.ok()) return id.status();
  if (absl::Status s = models_->WarmUp(*id); !s.ok()) {
    models_->Delete(*id).IgnoreError();
    return absl::Status(s.code(), absl::StrCat("warm-up: ", s.message()));
  }
  models_->MarkServable(*id);
  return *id;
}

void ModelRepository::ApplyLabels(const std::string& name, const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  const std::map<std::string, uint64_t> want = ReadLabels(path);
  auto have = models_->Labels(name);
  if (!have.ok()) return;
  for (const auto& [label, version] : want) {
    auto it = have->labels.find(label);
    if (it != have->labels.end() && it->second == version) continue;
    auto moved = models_->SetLabel(name, label, version);
    if (moved.ok()) {
      spdlog::info("model repository: '{}' label '{}' -> version {}", name, label, version);
    } else if (!absl::IsNotFound(moved.status()) && !absl::IsFailedPrecondition(moved.status())) {
      spdlog::warn("model repository: '{}' label '{}': {}", name, label, moved.status().ToString());
    }
    // NOT_FOUND / FAILED_PRECONDITION: that version is not loaded (yet);
    // the label stays where it is until a scan finds it servable.
  }
  for (const auto& [label, version] : have->labels) {
    if (want.count(label) == 0) models_->SetLabel(name, label, 0).IgnoreError();
  }
}

void ModelRepository::Scan() {
  std::error_code ec;
  const fs::path root(options_.dir);
  if (!fs::is_directory(root, ec)) {
    // Keep serving what is loaded; not ready only with nothing to serve.
    spdlog::warn("model repository '{}': not a readable directory; keeping {} loaded versions",
                 options_.dir, serving());
    ready_ = first_scan_done_ && serving() > 0;
    if (options_.on_ready) options_.on_ready(ready_);
    return;
  }
  std::set<Key> present;
  std::set<std::string> names;
  for (const auto& name_entry : fs::directory_iterator(root, ec)) {
    const std::string name = name_entry.path().filename().string();
    if (!name_entry.is_directory(ec) || !store::ValidateModelName(name).ok()) continue;
    names.insert(name);
    for (const auto& version_entry : fs::directory_iterator(name_entry.path(), ec)) {
      uint64_t version = 0;
      if (!version_entry.is_directory(ec) ||
          !absl::SimpleAtoi(version_entry.path().filename().string(), &version) || version == 0) {
        continue;
      }
      const fs::path file = version_entry.path() / "model.pb";
      std::error_code fe;
      const auto size = fs::file_size(file, fe);
      if (fe) continue;  // no model.pb (yet): a publisher writes it last
      const Key key{name, version};
      present.insert(key);
      {
        absl::MutexLock l(&mu_);
        if (loaded_.count(key)) continue;
      }
      const FileStamp stamp{size, fs::last_write_time(file, fe).time_since_epoch().count()};
      if (auto bad = bad_.find(key); bad != bad_.end() && bad->second == stamp) continue;
      // A version this server already holds (a restart with its store):
      // adopt it after a warm-up instead of importing it again.
      absl::StatusOr<uint64_t> id;
      if (auto held = models_->FindVersion(name, version)) {
        id = *held;
        if (absl::Status s = models_->WarmUp(*held); !s.ok()) id = s;
        if (id.ok()) models_->MarkServable(*held);
      } else {
        id = Load(file.string(), key);
      }
      if (!id.ok()) {
        ++rejected_;
        bad_[key] = stamp;
        spdlog::error("model repository: {}: refused: {}", file.string(), id.status().ToString());
        continue;
      }
      bad_.erase(key);
      ++imported_;
      spdlog::info("model repository: {} serving as model {} ('{}' version {})", file.string(),
                   *id, name, version);
      absl::MutexLock l(&mu_);
      loaded_[key] = *id;
    }
    ApplyLabels(name, (name_entry.path() / "labels").string());
  }
  // Versions whose file has gone are unloaded.
  std::vector<std::pair<Key, uint64_t>> gone;
  {
    absl::MutexLock l(&mu_);
    for (auto it = loaded_.begin(); it != loaded_.end();) {
      if (present.count(it->first)) {
        ++it;
        continue;
      }
      gone.push_back(*it);
      it = loaded_.erase(it);
    }
  }
  for (const auto& [key, id] : gone) {
    absl::Status s = models_->Delete(id);
    ++unloaded_;
    spdlog::info("model repository: '{}' version {} (model {}) removed from the repository; "
                 "unloaded{}",
                 key.first, key.second, id, s.ok() ? "" : absl::StrCat(" (", s.ToString(), ")"));
  }
  for (auto it = bad_.begin(); it != bad_.end();) {
    it = present.count(it->first) ? std::next(it) : bad_.erase(it);
  }
  if (!first_scan_done_) {
    names_at_start_ = names;
    first_scan_done_ = true;
  }
  // Ready: every name present at the start has a servable version.
  bool ready = true;
  {
    absl::MutexLock l(&mu_);
    for (const auto& name : names_at_start_) {
      auto it = loaded_.lower_bound(Key{name, 0});
      ready = ready && it != loaded_.end() && it->first.first == name;
    }
    if (ready_ && !loaded_.empty()) ready = true;  // once ready, ready while serving
    if (loaded_.empty() && !names_at_start_.empty()) ready = false;
  }
  ready_ = ready;
  if (options_.on_ready) options_.on_ready(ready);
}

}  // namespace debias::server
