// C-GET and C-MOVE through a tenant. JS decides which instances a request sends (and,
// for C-MOVE, where); the sub-operations are C-STOREs made here with the framework.
#pragma once

#include "dicom_servers.h"

#include <DicomNetworking/IGetRequestHandler.h>
#include <DicomNetworking/IMoveRequestHandler.h>

#include <stdexcept>
#include <string>

namespace mtd {

// A C-MOVE refused before any sub-operation, with the status the SCU receives.
class MoveRefused : public std::runtime_error {
 public:
  MoveRefused(uint16_t status, const std::string& reason) : std::runtime_error(reason), status_(status) {}
  uint16_t Status() const { return status_; }

 private:
  uint16_t status_;
};

// The iterator of a tenant's C-MOVE: besides the framework's interface, it tells which
// instance the last failed sub-operation was about (native/move_scp.cpp reports it).
class TenantMoveIterator : public Orthanc::IMoveRequestIterator {
 public:
  virtual const std::string& LastFailedSopInstanceUid() const = 0;
};

Orthanc::IGetRequestHandler* CreateGetHandler(const TenantServerSpec& spec);
Orthanc::IMoveRequestHandler* CreateMoveHandler(const TenantServerSpec& spec);

}  // namespace mtd
