// AdminService: whole-server operations (admin role): consistent backups.
#ifndef DEBIAS_SERVER_ADMIN_SERVICE_H_
#define DEBIAS_SERVER_ADMIN_SERVICE_H_

#include "core/store/interaction_store.h"
#include "debias/v1/admin_service.grpc.pb.h"
#include "server/options.h"

namespace debias::server {

class AdminServiceImpl final : public v1::AdminService::Service {
 public:
  AdminServiceImpl(store::InteractionStore* store, const ServerOptions& options)
      : store_(store), options_(options) {}
  grpc::Status Backup(grpc::ServerContext*, const v1::BackupRequest*,
                      v1::BackupResponse*) override;

 private:
  store::InteractionStore* store_;
  const ServerOptions& options_;
};

}  // namespace debias::server

#endif  // DEBIAS_SERVER_ADMIN_SERVICE_H_
