#include "core/models/model.h"

#include "absl/strings/str_cat.h"
#include "core/models/model_registry.h"
#include "core/util/coding.h"

namespace debias::models {

absl::StatusOr<std::unique_ptr<Model>> DeserializeModel(std::string_view bytes) {
  util::Reader r(bytes);
  std::string_view kind;
  if (!r.GetBytes(&kind)) {
    return absl::DataLossError("model snapshot: truncated header");
  }
  for (const ModelKind& k : ModelKinds()) {
    if (k.name == kind) return k.deserialize(bytes);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("model snapshot: unknown model kind '", std::string(kind), "'"));
}

}  // namespace debias::models
