// echo_client.cpp: a C++17 consumer of an installed libprivline, built by
// tests/install/run.sh with pkg-config (g++) and through CMake. It dials the
// C example server over TCP and checks the echo of BYTES pseudo-random bytes.
//
//   echo_client CONFIG
//
// CONFIG is a file (not the command line: it holds the network key) of
// "name value" lines: host, port, network-key (64 hex digits), server-key
// (64 hex digits), bytes. The client makes a fresh identity of its own.
// The identity, handshake and channel are owned by std::unique_ptr with the
// deleters of privline.hpp (the README's C++ snippet).
//
// Prints "echo_client: N bytes echoed intact, closed both ways" and exits 0,
// or names what failed and exits 1.

#include "privline.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void fail(const std::string &why)
{
    throw std::runtime_error(why);
}

void must(privline_result result, std::string_view what)
{
    if (result != PRIVLINE_RESULT_OK)
        fail(std::string(what) + ": " + privline_result_str(result));
}

template <std::size_t N>
std::array<std::uint8_t, N> from_hex(const std::string &hex)
{
    std::array<std::uint8_t, N> out{};
    if (hex.size() != 2 * N)
        fail("expected " + std::to_string(2 * N) + " hex digits");
    for (std::size_t i = 0; i < N; i++)
        out[i] = static_cast<std::uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
    return out;
}

// A connected TCP socket, closed when it goes out of scope.
class Socket {
public:
    Socket(const std::string &host, int port) : fd_(socket(AF_INET, SOCK_STREAM, 0))
    {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(port));
        if (fd_ < 0 || inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1
            || connect(fd_, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0)
            fail("cannot connect to " + host + ":" + std::to_string(port) + ": " + std::strerror(errno));
    }
    ~Socket() { close(fd_); }
    Socket(const Socket &) = delete;
    Socket &operator=(const Socket &) = delete;

    void send_all(const std::uint8_t *bytes, std::size_t len)
    {
        while (len > 0) {
            ssize_t n = ::send(fd_, bytes, len, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                fail(std::string("send: ") + std::strerror(errno));
            bytes += n;
            len -= static_cast<std::size_t>(n);
        }
    }

    // Appends what arrives to `buffer`; false at the end of the stream.
    bool receive(std::vector<std::uint8_t> &buffer)
    {
        std::uint8_t chunk[65536];
        ssize_t n;
        do {
            n = ::recv(fd_, chunk, sizeof chunk, 0);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
            fail(std::string("recv: ") + std::strerror(errno));
        buffer.insert(buffer.end(), chunk, chunk + n);
        return n > 0;
    }

private:
    int fd_;
};

// Drops the first `n` bytes of `buffer`.
void consume(std::vector<std::uint8_t> &buffer, std::size_t n)
{
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
}

channel_ptr handshake(Socket &socket, const identity_ptr &me, const std::uint8_t *network_key,
                      const std::uint8_t *server_key, std::vector<std::uint8_t> &in)
{
    privline_handshake *raw = nullptr;
    must(privline_handshake_new_client_with_identity(PRIVLINE_PROTOCOL_PRIVLINE1, network_key, me.get(),
                                                     server_key, &raw),
         "new client handshake");
    handshake_ptr hs(raw);
    for (;;) {
        std::array<std::uint8_t, PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN> out;
        std::size_t used = 0, out_len = out.size();
        privline_handshake_status status;
        must(privline_handshake_step(hs.get(), in.data(), in.size(), &used, out.data(), &out_len, &status),
             "handshake step");
        consume(in, used);
        socket.send_all(out.data(), out_len);
        if (status == PRIVLINE_HANDSHAKE_DONE)
            break;
        if (used == 0 && out_len == 0 && !socket.receive(in))
            fail("the server hung up during the handshake");
    }
    channel_ptr channel;
    must(into_channel(hs, channel), "into_channel");
    if (hs)
        fail("into_channel succeeded but the handshake is still owned");
    return channel;
}

// The next record: its type, and its payload appended to `payload`.
privline_record_type next_record(Socket &socket, privline_channel *channel, std::vector<std::uint8_t> &in,
                                 std::vector<std::uint8_t> &payload)
{
    static std::array<std::uint8_t, PRIVLINE_OPEN_MAX_OUTPUT_LEN> plain;
    for (;;) {
        std::size_t used = 0, plain_len = plain.size();
        privline_record_type type;
        must(privline_channel_open(channel, in.data(), in.size(), &used, plain.data(), &plain_len, &type),
             "open");
        consume(in, used);
        if (type == PRIVLINE_RECORD_DATA)
            payload.insert(payload.end(), plain.begin(), plain.begin() + static_cast<std::ptrdiff_t>(plain_len));
        if (type != PRIVLINE_RECORD_NONE)
            return type;
        if (!socket.receive(in))
            fail("the stream ended without the server's close (truncated)");
    }
}

int run(const char *config_path)
{
    std::map<std::string, std::string> config;
    std::ifstream file(config_path);
    for (std::string name, value; file >> name >> value;)
        config[name] = value;
    for (const char *name : {"host", "port", "network-key", "server-key", "bytes"})
        if (config.count(name) == 0)
            fail(std::string(config_path) + ": no " + name);
    auto network_key = from_hex<PRIVLINE_NETWORK_KEY_LEN>(config["network-key"]);
    auto server_key = from_hex<PRIVLINE_PUBLIC_KEY_LEN>(config["server-key"]);
    const std::size_t total = std::stoul(config["bytes"]);

    identity_ptr me;
    {
        std::array<std::uint8_t, PRIVLINE_SEED_LEN> seed;
        std::array<std::uint8_t, PRIVLINE_PUBLIC_KEY_LEN> pub;
        privline_identity *raw = nullptr;
        must(privline_identity_generate(seed.data(), pub.data()), "identity_generate");
        must(privline_identity_new(seed.data(), seed.size(), &raw), "identity_new");
        me.reset(raw);
        std::memset(seed.data(), 0, seed.size());
    }

    Socket socket(config["host"], std::stoi(config["port"]));
    std::vector<std::uint8_t> in;
    channel_ptr channel = handshake(socket, me, network_key.data(), server_key.data(), in);
    me.reset();  // the channel does not need the identity

    std::array<std::uint8_t, PRIVLINE_PUBLIC_KEY_LEN> peer;
    must(privline_channel_peer_key(channel.get(), peer.data()), "peer_key");
    if (peer != server_key)
        fail("the channel's peer is not the server dialled");

    // Pseudo-random data (xorshift32), sent 64 KiB at a time; each chunk's
    // echo is read before the next is sent.
    std::vector<std::uint8_t> data(total);
    std::uint32_t x = 2463534242u;
    for (auto &byte : data) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        byte = static_cast<std::uint8_t>(x);
    }
    std::vector<std::uint8_t> echoed, sealed;
    for (std::size_t offset = 0; offset < total;) {
        const std::size_t len = std::min<std::size_t>(65536, total - offset);
        sealed.resize(privline_channel_sealed_len(channel.get(), len, 0));
        std::size_t sealed_len = sealed.size();
        must(privline_channel_seal(channel.get(), data.data() + offset, len, 0, sealed.data(), &sealed_len),
             "seal");
        socket.send_all(sealed.data(), sealed_len);
        offset += len;
        while (echoed.size() < offset)
            if (next_record(socket, channel.get(), in, echoed) != PRIVLINE_RECORD_DATA)
                fail("the server closed before echoing everything");
    }
    if (echoed != data)
        fail("the echo differs from what was sent");

    std::array<std::uint8_t, PRIVLINE_RECORD_OVERHEAD_LEN> close_record;
    std::size_t close_len = close_record.size();
    must(privline_channel_close(channel.get(), 0, close_record.data(), &close_len), "close");
    socket.send_all(close_record.data(), close_len);
    std::vector<std::uint8_t> extra;
    if (next_record(socket, channel.get(), in, extra) != PRIVLINE_RECORD_CLOSE || !extra.empty())
        fail("expected the server's close");
    bool closed = false;
    must(privline_channel_peer_closed(channel.get(), &closed), "peer_closed");
    if (!closed)
        fail("peer_closed is false after the server's close");

    std::printf("echo_client: %zu bytes echoed intact, closed both ways\n", total);
    return 0;
}

}  // namespace

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: echo_client CONFIG\n");
        return 2;
    }
    try {
        return run(argv[1]);
    } catch (const std::exception &error) {
        std::fprintf(stderr, "echo_client: %s\n", error.what());
        return 1;
    }
}
