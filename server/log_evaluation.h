// The log modes of EvaluationService.Evaluate, as conversions: the request's
// fields are checked, models and datasets resolved, and the work done by
// core/eval/log_evaluation.h (EvaluateRankingFromLog, EvaluatePolicyFromLog),
// whose result is written into the response.
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
