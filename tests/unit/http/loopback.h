// A raw-socket HTTP client for the server's loopback tests: it writes exactly the bytes a test
// means (oversized headers, trickled bytes, bodies a method should not have) and reads the reply
// as bytes, so nothing between the test and the server fixes up what is being tested.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "http/server.h"

namespace poolkeeper::http::testing {

struct Response {
  int status = 0;
  std::string headers;  // lower-cased, for lookups
  std::string body;
};

inline uint16_t PortOf(const std::string& address) {
  return static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

inline int Connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  // A bound on every read, so a broken server fails the test instead of hanging it.
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

inline void SendAll(int fd, const std::string& data) {
  for (size_t sent = 0; sent < data.size();) {
    ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server closed: what it answered is still readable
    sent += static_cast<size_t>(n);
  }
}

inline Response Parse(const std::string& raw) {
  Response response;
  size_t end_of_headers = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || end_of_headers == std::string::npos) {
    throw std::runtime_error("not an HTTP response: " + raw.substr(0, 200));
  }
  response.status = std::stoi(raw.substr(9, 3));
  response.headers = raw.substr(0, end_of_headers);
  for (char& c : response.headers) c = static_cast<char>(std::tolower(c));
  response.body = raw.substr(end_of_headers + 4);
  return response;
}

// Everything the server sends until it closes (or the 10 s read bound passes).
inline std::string ReadToClose(int fd) {
  std::string raw;
  char buffer[4096];
  for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;) raw.append(buffer, n);
  return raw;
}

// Sends `raw` on a new connection and reads the reply to the close.
inline Response Exchange(const std::string& address, const std::string& raw) {
  int fd = Connect(PortOf(address));
  if (fd < 0) throw std::runtime_error("cannot connect to " + address);
  SendAll(fd, raw);
  std::string reply = ReadToClose(fd);
  close(fd);
  return Parse(reply);
}

inline Response Request(const std::string& address, const std::string& method,
                        const std::string& path, const std::string& extra_headers = "") {
  return Exchange(address, method + " " + path + " HTTP/1.1\r\nHost: " + address +
                               "\r\nConnection: close\r\n" + extra_headers + "\r\n");
}

// True once the server closed `fd` (a read gives end of file or a reset), waiting at most
// `within`; bytes the server sent first are skipped.
inline bool ClosedWithin(int fd, std::chrono::milliseconds within) {
  auto deadline = std::chrono::steady_clock::now() + within;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buffer[4096];
    if (recv(fd, buffer, sizeof buffer, MSG_DONTWAIT) <= 0) return true;
  }
}

// Waits until `condition` holds or `within` passes; returns whether it held. For what the server
// records just after a client can observe it (a timeout closes the socket, then its handler
// counts).
template <class Condition>
bool Eventually(Condition condition, std::chrono::milliseconds within) {
  auto deadline = std::chrono::steady_clock::now() + within;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

inline std::unique_ptr<Server> StartOnLoopback(ServerOptions options) {
  options.address = "127.0.0.1:0";
  auto server = Server::Start(std::move(options));
  if (!server) throw std::runtime_error(server.error().ToString());
  return std::move(*server);
}

// This process's resident memory, from /proc/self/status.
inline long VmRssKiB() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace poolkeeper::http::testing
