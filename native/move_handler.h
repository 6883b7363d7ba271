// Orthanc::IMoveRequestHandler of a tenant server: JS decides which instances a C-MOVE
// sends and where (src/move.ts); each sub-operation is a C-STORE to the destination,
// over one association (the framework's SCU), as Orthanc's own C-MOVE SCP sends.
#pragma once

#include "tenant_spec.h"

#include <memory>

#include <DicomNetworking/IMoveRequestHandler.h>

#include <string>

namespace mtd {

// The iterator of a tenant's C-MOVE: besides the framework's interface, it tells which
// instance the last failed sub-operation was about (native/move_scp.cpp reports it).
class TenantMoveIterator : public Orthanc::IMoveRequestIterator {
 public:
  virtual const std::string& LastFailedSopInstanceUid() const = 0;
};

class TenantMoveHandler : public Orthanc::IMoveRequestHandler {
 public:
  // The spec it was built with: a command runs to its end with it, whatever changes meanwhile.
  explicit TenantMoveHandler(std::shared_ptr<const TenantServerSpec> spec) : specHolder_(std::move(spec)), spec_(*specHolder_) {}

  // Throws RetrieveRefused (retrieve_plan.h) when JS refuses the move.
  Orthanc::IMoveRequestIterator* Handle(const std::string& targetAet, const Orthanc::DicomMap& input,
                                        const std::string& originatorIp, const std::string& originatorAet,
                                        const std::string& calledAet, uint16_t originatorId) override;

 private:
  std::shared_ptr<const TenantServerSpec> specHolder_;
  const TenantServerSpec& spec_;
};

}  // namespace mtd
