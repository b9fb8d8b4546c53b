// Conversions between wire messages (proto/debias/v1) and core types.
// Shared by the server and the C++ client.
#ifndef DEBIAS_WIRE_CONVERT_H_
#define DEBIAS_WIRE_CONVERT_H_

#include "core/data/dataset_view.h"
#include "core/data/interaction.h"
#include "debias/v1/common.pb.h"

namespace debias {

void ToCore(const v1::Interaction& in, data::Interaction* out);
void ToProto(const data::Interaction& in, v1::Interaction* out);
// Event `e` of a view, with its keys.
void ViewEventToProto(const data::DatasetView& v, size_t e, v1::Interaction* out);

}  // namespace debias

#endif  // DEBIAS_WIRE_CONVERT_H_
