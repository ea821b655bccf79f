// A JetStream stream read back for tests: its config and every message in
// it (subject, data, Nats-Msg-Id), fetched by sequence with libnats.
// Leaves to others: the server (nats_server.hpp) and what publishes.
#pragma once

#include <nats/nats.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace outpost::testing {

struct StoredNatsMessage {
  std::uint64_t seq = 0;
  std::string subject;
  std::string data;
  std::string msg_id;  // the Nats-Msg-Id header ("" when absent)
};

struct StoredNatsStream {
  std::vector<std::string> subjects;
  std::int64_t duplicate_window_ns = 0;
  bool file_storage = false;
  std::vector<StoredNatsMessage> messages;
};

// The stream as the server holds it now. Throws std::runtime_error when the
// server or the stream cannot be reached.
inline StoredNatsStream read_nats_stream(const std::string& url, const std::string& stream) {
  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;
  jsStreamInfo* info = nullptr;
  auto fail = [&](const std::string& what, natsStatus s) {
    if (info != nullptr) jsStreamInfo_Destroy(info);
    if (js != nullptr) jsCtx_Destroy(js);
    if (conn != nullptr) natsConnection_Destroy(conn);
    throw std::runtime_error(what + ": " + natsStatus_GetText(s));
  };
  natsStatus s = natsConnection_ConnectTo(&conn, url.c_str());
  if (s != NATS_OK) fail("connect to " + url, s);
  if ((s = natsConnection_JetStream(&js, conn, nullptr)) != NATS_OK) fail("JetStream context", s);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if ((s = js_GetStreamInfo(&info, js, stream.c_str(), nullptr, &jerr)) != NATS_OK) fail("stream " + stream, s);

  StoredNatsStream out;
  for (int i = 0; i < info->Config->SubjectsLen; ++i) out.subjects.emplace_back(info->Config->Subjects[i]);
  out.duplicate_window_ns = info->Config->Duplicates;
  out.file_storage = info->Config->Storage == js_FileStorage;
  for (std::uint64_t seq = info->State.FirstSeq; info->State.Msgs > 0 && seq <= info->State.LastSeq; ++seq) {
    natsMsg* msg = nullptr;
    s = js_GetMsg(&msg, js, stream.c_str(), seq, nullptr, &jerr);
    if (s == NATS_NOT_FOUND) continue;  // deleted
    if (s != NATS_OK) fail("message " + std::to_string(seq), s);
    StoredNatsMessage m;
    m.seq = seq;
    m.subject = natsMsg_GetSubject(msg);
    m.data.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    const char* id = nullptr;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id != nullptr) m.msg_id = id;
    natsMsg_Destroy(msg);
    out.messages.push_back(std::move(m));
  }
  jsStreamInfo_Destroy(info);
  jsCtx_Destroy(js);
  natsConnection_Destroy(conn);
  return out;
}

}  // namespace outpost::testing
