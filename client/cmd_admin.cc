// debiasctl subcommands that move whole models and stores:
//   model export --model ID --out FILE   a ready model as a snapshot file
//   model import FILE                     load a snapshot as a new model
//   backup [--name NAME]                  a consistent checkpoint (admin)
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli.h"

namespace debias::cli {

namespace {

using nlohmann::json;

void RegisterModelTransfer(CLI::App& app, Context& ctx) {
  auto* model = app.add_subcommand("model", "move models between servers (export | import)");
  model->require_subcommand(1);

  struct ExportArgs {
    uint64_t id = 0;
    std::string out;
  };
  auto e = std::make_shared<ExportArgs>();
  auto* exp = model->add_subcommand(
      "export", "write a ready model as a snapshot file (protobuf ModelSnapshotFile)");
  exp->add_option("--model", e->id, "model id")->required();
  exp->add_option("--out", e->out, "snapshot file to write")->required();
  AddGlobalOptions(exp, &ctx.global);
  exp->callback([&ctx, e] {
    ctx.run = [&ctx, e]() -> int {
      auto file = ctx.Connect()->ExportModel(e->id);
      if (!file.ok()) return Fail(file.status());
      // Write next to the target and rename, so a reader never sees half a file.
      const std::string tmp = e->out + ".tmp";
      {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out || !file->SerializeToOstream(&out)) {
          return Fail(absl::FailedPreconditionError(
              absl::StrCat("--out '", e->out, "': cannot write")));
        }
      }
      if (std::rename(tmp.c_str(), e->out.c_str()) != 0) {
        return Fail(absl::FailedPreconditionError(
            absl::StrCat("--out '", e->out, "': cannot rename ", tmp)));
      }
      const auto& h = file->header();
      json j{{"model_id", e->id},
             {"file", e->out},
             {"format_version", h.format_version()},
             {"parameters_bytes", h.parameters_bytes()},
             {"users", h.user_keys_size()},
             {"items", h.item_keys_size()}};
      return Emit(ctx, j,
                  absl::StrFormat("model %d exported to %s (%d parameter bytes, %d users, "
                                  "%d items)",
                                  e->id, e->out, h.parameters_bytes(), h.user_keys_size(),
                                  h.item_keys_size()));
    };
  });

  auto in_path = std::make_shared<std::string>();
  auto* imp = model->add_subcommand("import", "load a snapshot file as a new ready model");
  imp->add_option("file", *in_path, "snapshot file written by `model export`")->required();
  AddGlobalOptions(imp, &ctx.global);
  imp->callback([&ctx, in_path] {
    ctx.run = [&ctx, in_path]() -> int {
      std::ifstream in(*in_path, std::ios::binary);
      if (!in) return Fail(absl::NotFoundError(absl::StrCat("'", *in_path, "': cannot read")));
      v1::ModelSnapshotFile file;
      if (!file.ParseFromIstream(&in) || !file.has_header()) {
        return Fail(absl::InvalidArgumentError(
            absl::StrCat("'", *in_path, "': not a debias model snapshot")));
      }
      auto m = ctx.Connect()->ImportModel(file);
      if (!m.ok()) return Fail(m.status());
      json j{{"model_id", m->id()},
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
  RegisterBackup(app, ctx);
}

}  // namespace debias::cli
