"""Python consumer of an installed privline wheel (tests/install/run.sh).

    python echo.py CONFIG

CONFIG holds "name value" lines (host, port, network-key, server-key, bytes),
as for echo_client.cpp: the network key stays off the command line. A fresh
client identity dials the C server, checks the echo of BYTES random bytes
(sent 64 KiB at a time), closes both ways, and prints where the library was
loaded from: "echo.py: N bytes echoed intact, closed both ways, library PATH".
"""

import os
import sys

import privline


def main(config_path):
    with open(config_path, encoding="ascii") as f:
        config = dict(line.split() for line in f if line.strip())
    total = int(config["bytes"])
    data = os.urandom(total)
    client = privline.Identity.generate()
    conn = privline.connect(
        (config["host"], int(config["port"])),
        bytes.fromhex(config["network-key"]),
        client,
        bytes.fromhex(config["server-key"]),
        timeout=30.0,
    )
    assert conn.peer_key == bytes.fromhex(config["server-key"]), "the channel's peer is not the server dialled"
    echoed = bytearray()
    for offset in range(0, total, 65536):
        conn.sendall(data[offset : offset + 65536])
        while len(echoed) < min(offset + 65536, total):
            chunk = conn.recv(65536)
            assert chunk, "the server closed before echoing everything"
            echoed += chunk
    assert bytes(echoed) == data, "the echo differs from what was sent"
    conn.close_write()
    assert conn.recv_all() == b"", "data after the echo"
    assert conn.peer_closed, "no close from the server"
    conn.close()
    print(f"echo.py: {total} bytes echoed intact, closed both ways, library {privline.library_path()}")


if __name__ == "__main__":
    main(sys.argv[1])
