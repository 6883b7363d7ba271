// The native shim's constants, in one place.
#pragma once

#include <chrono>

namespace mtd {

// How long a question to JavaScript may take. A DICOM request (C-FIND, C-MOVE, C-GET, a
// C-STORE of an instance Orthanc holds) is bounded by the server's DicomScpTimeout;
// these bound the rest.
inline constexpr std::chrono::seconds kQuickAnswerTimeout(10);      // permissions, settings, modalities
inline constexpr std::chrono::seconds kInitializationTimeout(60);   // the configuration, at start-up
inline constexpr std::chrono::seconds kStartedTimeout(30);          // once Orthanc's REST API answers
inline constexpr std::chrono::seconds kUnboundedRequestTimeout(600);  // DicomScpTimeout 0 ("no timeout")
inline constexpr std::chrono::seconds kRestAnswerTimeout(30);        // the plugin's REST routes

// The watchdog: the JavaScript side is stalled when a request waits this long untaken.
inline constexpr std::chrono::seconds kJsStallThreshold(10);
inline constexpr std::chrono::milliseconds kWatchdogPeriod(500);

// Facts for the operator's view (operations, changes of Orthanc's store) reach JavaScript
// in batches at most this long after they happened.
inline constexpr std::chrono::milliseconds kNotificationDelay(100);

// Thread names, as `top -H`, `ps -T` and /proc/PID/task/*/comm show them (at most 15
// characters). The JavaScript thread's CPU is what the plugin's decisions, metrics and audit
// trail cost; the tenants' DICOM threads (their listener and workers) are named when their
// server starts, not after the thread that started it (a libuv worker).
inline constexpr const char* kJavaScriptThreadName = "mtd-javascript";
inline constexpr const char* kDicomThreadsName = "mtd-dicom";

// ORTHANC_MAXIMUM_TAG_LENGTH of the core: longer values are left out of a DICOM summary.
inline constexpr unsigned int kMaximumTagLength = 256;

// C-GET and C-MOVE sub-operations transcode at most this many instances at once.
inline constexpr unsigned int kConcurrentTranscodings = 2;

}  // namespace mtd
