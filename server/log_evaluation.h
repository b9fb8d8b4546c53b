// The log-estimator mode of EvaluationService.Evaluate: a model's (or
// uploaded scores') true ranking quality estimated from a biased click log
// with core/eval/unbiased.h, with intervals and weight diagnostics.
//
// Population: every user the served model knows (or every uploaded user);
// users of the log the model does not know are left out and counted in the
// diagnostics. Items: the model's items (or the uploaded ones) plus the
// log's items the ranking cannot contain (they count towards recall's
// denominator only).
// Thread safety: reentrant.
#ifndef DEBIAS_SERVER_LOG_EVALUATION_H_
#define DEBIAS_SERVER_LOG_EVALUATION_H_

#include <functional>

#include "absl/status/status.h"
#include "debias/v1/evaluation_service.pb.h"
#include "server/model_manager.h"
#include "server/options.h"

namespace debias::server {

// Validates `req` (estimator set) and fills `resp`. INVALID_ARGUMENT naming
// the field for bad input, NOT_FOUND for a missing model or dataset,
// FAILED_PRECONDITION when the log cannot give what was asked (e.g. no
// logged propensities).
// `cancelled` (may be empty) is polled during the long loops; when it
// returns true the evaluation stops with CANCELLED.
absl::Status EvaluateFromLog(ModelManager* models, store::InteractionStore* store,
                             const Limits& limits, const v1::EvaluateRequest& req,
                             v1::EvaluateResponse* resp,
                             std::function<bool()> cancelled = {});

// The off-policy mode (policy_estimator set): the served model's value as a
// policy on logged decisions (see the proto). Same error conventions.
absl::Status EvaluatePolicyFromLog(ModelManager* models, store::InteractionStore* store,
                                   const Limits& limits, const v1::EvaluateRequest& req,
                                   v1::EvaluateResponse* resp,
                                   std::function<bool()> cancelled = {});

}  // namespace debias::server

#endif  // DEBIAS_SERVER_LOG_EVALUATION_H_
