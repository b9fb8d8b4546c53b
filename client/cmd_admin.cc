// debiasctl subcommands that move whole models and stores:
//   model export --model ID --out FILE   a ready model as a snapshot file
//   model import FILE                     load a snapshot as a new model
//   model publish --model REF --repository DIR   export into DIR/NAME/VERSION/model.pb
//   label set NAME LABEL VERSION | label list NAME   move or show a name's labels
//   backup [--name NAME]                  a consistent checkpoint (admin)
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli.h"

namespace debias::cli {

namespace {

using nlohmann::json;

// Writes `bytes` next to `path` and renames it into place, so a reader (a
// replica polling a repository) never sees half a file.
absl::Status WriteFileAtomically(const std::string& path, const std::string& bytes) {
  const std::filesystem::path target(path);
  const std::string tmp =
      (target.parent_path() / ("." + target.filename().string() + ".tmp")).string();
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out || !out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())) ||
        !out.flush()) {
      return absl::FailedPreconditionError(absl::StrCat("'", path, "': cannot write ", tmp));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("'", path, "': cannot rename ", tmp));
  }
  return absl::OkStatus();
}

// NAME/labels of a repository: "LABEL VERSION" lines (absent file: none).
std::map<std::string, uint64_t> ReadLabelsFile(const std::string& path) {
  std::map<std::string, uint64_t> labels;
  std::ifstream in(path);
  std::string label;
  uint64_t version = 0;
  while (in >> label >> version) labels[label] = version;
  return labels;
}

void RegisterModelTransfer(CLI::App& app, Context& ctx) {
  auto* model = app.add_subcommand("model", "move models between servers (export | import)");
  model->require_subcommand(1);

  struct ExportArgs {
    std::string model;
    std::string out;
  };
  auto e = std::make_shared<ExportArgs>();
  auto* exp = model->add_subcommand(
      "export", "write a ready model as a snapshot file (protobuf ModelSnapshotFile)");
  exp->add_option("--model", e->model, "model: id, NAME, NAME:VERSION or NAME@LABEL")
      ->required();
  exp->add_option("--out", e->out, "snapshot file to write")->required();
  AddGlobalOptions(exp, &ctx.global);
  exp->callback([&ctx, e] {
    ctx.run = [&ctx, e]() -> int {
      auto ref = ParseModelRef(e->model);
      if (!ref.ok()) return Fail(ref.status());
      auto file = ctx.Connect()->ExportModel(*ref);
      if (!file.ok()) return Fail(file.status());
      if (auto s = WriteFileAtomically(e->out, file->SerializeAsString()); !s.ok()) {
        return Fail(s);
      }
      const auto& h = file->header();
      json j{{"model_id", h.model().id()},
             {"name", h.model().name()},
             {"version", h.model().version()},
             {"file", e->out},
             {"format_version", h.format_version()},
             {"parameters_bytes", h.parameters_bytes()},
             {"users", h.user_keys_size()},
             {"items", h.item_keys_size()}};
      return Emit(ctx, j,
                  absl::StrFormat("model %d exported to %s (%d parameter bytes, %d users, "
                                  "%d items)",
                                  h.model().id(), e->out, h.parameters_bytes(), h.user_keys_size(),
                                  h.item_keys_size()));
    };
  });

  struct PublishArgs {
    std::string model, repository, name;
    std::vector<std::string> labels;
  };
  auto p = std::make_shared<PublishArgs>();
  auto* pub = model->add_subcommand(
      "publish",
      "export a ready model into a snapshot repository (DIR/NAME/VERSION/model.pb, written to a "
      "temporary name and renamed) that replicas poll (debiasd --model_repository)");
  pub->add_option("--model", p->model, "model: id, NAME, NAME:VERSION or NAME@LABEL")->required();
  pub->add_option("--repository", p->repository, "repository directory")->required();
  pub->add_option("--name", p->name, "publish under this name (default: the model's own)");
  pub->add_option("--label", p->labels,
                  "point this label at the published version in DIR/NAME/labels (repeatable)");
  AddGlobalOptions(pub, &ctx.global);
  pub->callback([&ctx, p] {
    ctx.run = [&ctx, p]() -> int {
      auto ref = ParseModelRef(p->model);
      if (!ref.ok()) return Fail(ref.status());
      auto file = ctx.Connect()->ExportModel(*ref);
      if (!file.ok()) return Fail(file.status());
      const v1::Model& m = file->header().model();
      const std::string name = p->name.empty() ? m.name() : p->name;
      if (auto check = ParseModelRef(name); name.empty() || !check.ok() || check->id() != 0) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(
            "name='", name, "': a repository needs a model name ([a-z0-9][a-z0-9._-]{0,62}); "
            "give --name for an unnamed model")));
      }
      const uint64_t version = m.version() != 0 ? m.version() : m.id();
      namespace fs = std::filesystem;
      const fs::path dir = fs::path(p->repository) / name / std::to_string(version);
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) {
        return Fail(absl::FailedPreconditionError(
            absl::StrCat("--repository: cannot create ", dir.string(), ": ", ec.message())));
      }
      const std::string path = (dir / "model.pb").string();
      if (auto s = WriteFileAtomically(path, file->SerializeAsString()); !s.ok()) return Fail(s);
      json j{{"model_id", m.id()}, {"name", name}, {"version", version}, {"file", path}};
      if (!p->labels.empty()) {
        const std::string labels_path = (fs::path(p->repository) / name / "labels").string();
        auto labels = ReadLabelsFile(labels_path);
        for (const auto& l : p->labels) {
          if (auto check = ParseModelRef(l); !check.ok() || check->id() != 0) {
            return Fail(absl::InvalidArgumentError(
                absl::StrCat("--label '", l, "': must match [a-z0-9][a-z0-9._-]{0,62}")));
          }
          labels[l] = version;
        }
        std::string text;
        for (const auto& [l, v] : labels) absl::StrAppend(&text, l, " ", v, "\n");
        if (auto s = WriteFileAtomically(labels_path, text); !s.ok()) return Fail(s);
        j["labels"] = labels;
      }
      return Emit(ctx, j,
                  absl::StrCat("model ", m.id(), " published as ", path,
                               p->labels.empty() ? "" : " (labels updated)"));
    };
  });

  auto in_path = std::make_shared<std::string>();
  auto import_name = std::make_shared<std::string>();
  auto* imp = model->add_subcommand("import", "load a snapshot file as a new ready model");
  imp->add_option("file", *in_path, "snapshot file written by `model export`")->required();
  imp->add_option("--name", *import_name,
                  "store it as the next version of this name (default: the snapshot's name "
                  "and version when free)");
  AddGlobalOptions(imp, &ctx.global);
  imp->callback([&ctx, in_path, import_name] {
    ctx.run = [&ctx, in_path, import_name]() -> int {
      std::ifstream in(*in_path, std::ios::binary);
      if (!in) return Fail(absl::NotFoundError(absl::StrCat("'", *in_path, "': cannot read")));
      v1::ModelSnapshotFile file;
      if (!file.ParseFromIstream(&in) || !file.has_header()) {
        return Fail(absl::InvalidArgumentError(
            absl::StrCat("'", *in_path, "': not a debias model snapshot")));
      }
      file.mutable_header()->set_import_name(*import_name);
      auto m = ctx.Connect()->ImportModel(file);
      if (!m.ok()) return Fail(m.status());
      json j{{"model_id", m->id()},
             {"name", m->name()},
             {"version", m->version()},
             {"source_model_id", file.header().model().id()},
             {"state", m->state()},
             {"dataset", m->dataset()},
             {"users", m->users()},
             {"items", m->items()}};
      return Emit(ctx, j,
                  absl::StrCat("imported ", *in_path, " as model ", m->id(), " (", m->state(),
                               ")"));
    };
  });
}

void RegisterLabel(CLI::App& app, Context& ctx) {
  auto* label = app.add_subcommand("label", "move or list the labels of a model name");
  label->require_subcommand(1);
  struct Args {
    std::string name, label;
    uint64_t version = 0;
  };
  auto a = std::make_shared<Args>();
  auto* set = label->add_subcommand(
      "set", "point LABEL of NAME at VERSION (0 removes the label), atomically");
  set->add_option("name", a->name, "model name")->required();
  set->add_option("label", a->label, "label (stable, canary, ...)")->required();
  set->add_option("version", a->version, "version, or 0 to remove the label")->required();
  AddGlobalOptions(set, &ctx.global);
  auto emit = [&ctx](const v1::ModelLabels& l) {
    json labels = json::object();
    std::string human;
    for (const auto& [k, v] : std::map<std::string, uint64_t>(l.labels().begin(), l.labels().end())) {
      labels[k] = v;
      absl::StrAppend(&human, k, "\t", v, "\n");
    }
    return Emit(ctx,
                json{{"name", l.name()},
                     {"labels", labels},
                     {"versions", std::vector<uint64_t>(l.versions().begin(), l.versions().end())}},
                human);
  };
  set->callback([&ctx, a, emit] {
    ctx.run = [&ctx, a, emit]() -> int {
      auto l = ctx.Connect()->SetModelLabel(a->name, a->label, a->version);
      if (!l.ok()) return Fail(l.status());
      return emit(*l);
    };
  });
  auto* list = label->add_subcommand("list", "the labels and versions of NAME");
  list->add_option("name", a->name, "model name")->required();
  AddGlobalOptions(list, &ctx.global);
  list->callback([&ctx, a, emit] {
    ctx.run = [&ctx, a, emit]() -> int {
      auto l = ctx.Connect()->GetModelLabels(a->name);
      if (!l.ok()) return Fail(l.status());
      return emit(*l);
    };
  });
}

void RegisterBackup(CLI::App& app, Context& ctx) {
  auto name = std::make_shared<std::string>();
  auto* sub = app.add_subcommand(
      "backup", "take a consistent checkpoint of the server's store (admin role)");
  sub->add_option("--name", *name,
                  "checkpoint directory name under the server's --backup_dir "
                  "(default: backup-<UTC time>)");
  AddGlobalOptions(sub, &ctx.global);
  sub->callback([&ctx, name] {
    ctx.run = [&ctx, name]() -> int {
      auto r = ctx.Connect()->Backup(*name);
      if (!r.ok()) return Fail(r.status());
      json j{{"path", r->path()}, {"bytes", r->bytes()}, {"seconds", r->seconds()}};
      return Emit(ctx, j,
                  absl::StrFormat("backup written to %s (%d bytes, %.2fs)", r->path(),
                                  r->bytes(), r->seconds()));
    };
  });
}

}  // namespace

void RegisterAdminCommands(CLI::App& app, Context& ctx) {
  RegisterModelTransfer(app, ctx);
  RegisterLabel(app, ctx);
  RegisterBackup(app, ctx);
}

}  // namespace debias::cli
