"""Distributed launch helpers: HCCL rank tables and the per-process plan the launch scripts run.

The shell scripts in ``scripts/`` stay thin: everything that parses or validates lives here.

Rank table (Ascend, HCCL), version 1.0, every value a string::

    {"version": "1.0", "server_count": "1",
     "server_list": [{"server_id": "10.0.0.1", "host_nic_ip": "reserve",
                      "device": [{"device_id": "0", "device_ip": "192.168.100.101", "rank_id": "0"}, ...]}],
     "status": "completed"}

The older zoo format (``board_id``, ``group_count``, ``group_list[].instance_list[]`` with one device per
instance) is read into the same :class:`RankTable`.

Command line (used by ``scripts/run_distributed_pretrain_ascend.sh``)::

    python -m src.launch check --rank_table hccl.json
    python -m src.launch ascend-plan --rank_table hccl.json --log_dir OUT/logs [--server_id IP]

``ascend-plan`` prints one tab-separated line per process this host must start::

    RANK <TAB> DEVICE_ID <TAB> LOG_FILE <TAB> RANK_TABLE_FILE=... <TAB> DEVICE_ID=... <TAB> RANK_ID=... ...

and exits with status 2 and a message naming the file and the field when the rank table is invalid.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

DEFAULT_HCCL_CONNECT_TIMEOUT = 600
DEFAULT_HCCN_CONF = "/etc/hccn.conf"
DEFAULT_HCCN_TOOL = "hccn_tool"


class RankTableError(ValueError):
    """A rank table is missing, not JSON, or breaks the HCCL format; the message names file and field."""


class LaunchError(ValueError):
    """The launch cannot be planned on this host (no matching server, no device IPs, bad options)."""


# --------------------------------------------------------------------------------------
# Rank table
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Device:
    """One device of a server: its id on the host, its NIC address and its global rank."""

    device_id: str
    device_ip: str
    rank_id: int


@dataclass(frozen=True)
class Server:
    """One host of the rank table and the devices it runs."""

    server_id: str
    devices: tuple[Device, ...]

    @property
    def rank_start(self) -> int:
        """The smallest global rank id on this server (``RANK_START``)."""
        return min(d.rank_id for d in self.devices)


@dataclass(frozen=True)
class RankTable:
    """A validated rank table; ``format`` is the ``version`` of a server_list table (``"1.0"``) or
    ``"group_list"`` for the older zoo format."""

    path: Path
    format: str
    servers: tuple[Server, ...]

    @property
    def rank_size(self) -> int:
        return sum(len(s.devices) for s in self.servers)

    @property
    def server_ids(self) -> list[str]:
        return [s.server_id for s in self.servers]

    def server(self, server_id: str) -> Server:
        """The server with this ``server_id``; :class:`LaunchError` listing the known ids if absent."""
        for s in self.servers:
            if s.server_id == server_id:
                return s
        raise LaunchError(f"{self.path}: no server with server_id {server_id!r}; "
                          f"the table has {', '.join(map(repr, self.server_ids))}")


class _Checker:
    """Field accessors that raise :class:`RankTableError` naming the file and the JSON path."""

    def __init__(self, source: str):
        self.source = source

    def error(self, message: str) -> RankTableError:
        return RankTableError(f"{self.source}: {message}")

    def get(self, obj: Any, key: str, where: str) -> Any:
        if not isinstance(obj, dict):
            raise self.error(f"{where or 'top level'} must be a JSON object, got {type(obj).__name__}")
        if key not in obj:
            raise self.error(f"missing key {key!r} in {where or 'the top level'}")
        return obj[key]

    def string(self, obj: Any, key: str, where: str) -> str:
        value = self.get(obj, key, where)
        field = f"{where}.{key}" if where else key
        if not isinstance(value, str):
            raise self.error(f"{field} must be a string (HCCL rank tables write every value as a string), "
                             f"got {json.dumps(value)} ({type(value).__name__})")
        if not value.strip():
            raise self.error(f"{field} is empty")
        return value

    def digits(self, obj: Any, key: str, where: str) -> str:
        value = self.string(obj, key, where)
        if not (value.isascii() and value.isdigit()):
            field = f"{where}.{key}" if where else key
            raise self.error(f"{field} must be a non-negative integer written as a string, got {value!r}")
        return value

    def integer(self, obj: Any, key: str, where: str) -> int:
        return int(self.digits(obj, key, where))

    def ip(self, obj: Any, key: str, where: str) -> str:
        value = self.string(obj, key, where)
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise self.error(f"{where}.{key} must be an IP address, got {value!r}") from None
        return value

    def array(self, obj: Any, key: str, where: str) -> list:
        value = self.get(obj, key, where)
        field = f"{where}.{key}" if where else key
        if not isinstance(value, list):
            raise self.error(f"{field} must be a JSON array, got {type(value).__name__}")
        if not value:
            raise self.error(f"{field} is empty")
        return value


def _parse_v1(data: dict, c: _Checker) -> tuple[str, list[tuple[str, list[tuple[Device, str]]]]]:
    version = c.string(data, "version", "")
    if not re.fullmatch(r"1\.\d+", version):
        raise c.error(f"version is {version!r}; supported: '1.0' (server_list) or the older group_list format")
    server_count = c.integer(data, "server_count", "")
    server_list = c.array(data, "server_list", "")
    if server_count != len(server_list):
        raise c.error(f"server_count is \"{server_count}\" but server_list has {len(server_list)} server(s)")
    servers = []
    for i, entry in enumerate(server_list):
        where = f"server_list[{i}]"
        server_id = c.string(entry, "server_id", where)
        devices = []
        for j, dev in enumerate(c.array(entry, "device", where)):
            dwhere = f"{where}.device[{j}]"
            device = Device(device_id=c.digits(dev, "device_id", dwhere), device_ip=c.ip(dev, "device_ip", dwhere),
                            rank_id=c.integer(dev, "rank_id", dwhere))
            devices.append((device, dwhere))
        servers.append((server_id, devices))
    return version, servers


def _parse_group_list(data: dict, c: _Checker) -> list[tuple[str, list[tuple[Device, str]]]]:
    group_list = c.array(data, "group_list", "")
    group_count = c.integer(data, "group_count", "")
    if group_count != len(group_list):
        raise c.error(f"group_count is \"{group_count}\" but group_list has {len(group_list)} group(s)")
    by_server: dict[str, list[tuple[Device, str]]] = {}
    for g, group in enumerate(group_list):
        gwhere = f"group_list[{g}]"
        instances = c.array(group, "instance_list", gwhere)
        if isinstance(group, dict) and "instance_count" in group:
            count = c.integer(group, "instance_count", gwhere)
            if count != len(instances):
                raise c.error(f"{gwhere}.instance_count is \"{count}\" but instance_list has {len(instances)} entries")
        for i, inst in enumerate(instances):
            iwhere = f"{gwhere}.instance_list[{i}]"
            server_id = c.string(inst, "server_id", iwhere)
            rank_id = c.integer(inst, "rank_id", iwhere)
            devs = c.array(inst, "devices", iwhere)
            if len(devs) != 1:
                raise c.error(f"{iwhere}.devices must hold exactly one device (one rank per device), got {len(devs)}")
            dwhere = f"{iwhere}.devices[0]"
            device = Device(device_id=c.digits(devs[0], "device_id", dwhere),
                            device_ip=c.ip(devs[0], "device_ip", dwhere), rank_id=rank_id)
            by_server.setdefault(server_id, []).append((device, iwhere))
    return list(by_server.items())


def parse_rank_table(data: Any, source: str = "<rank table>") -> RankTable:
    """Validates a decoded rank table (1.0 ``server_list`` or older ``group_list`` format).

    Args:
        data: the decoded JSON.
        source: the file name, used as the prefix of every error message.

    Raises:
        RankTableError: missing keys, non-string values, ``status`` not ``"completed"``, ``server_count`` /
            ``group_count`` disagreeing with the list, duplicate server ids, a device id twice on one server,
            duplicate rank ids, or rank ids that are not exactly ``0 .. N-1``.
    """
    c = _Checker(source)
    if not isinstance(data, dict):
        raise c.error(f"top level must be a JSON object, got {type(data).__name__}")
    if "server_list" in data:
        fmt, servers = _parse_v1(data, c)
    elif "group_list" in data:
        fmt, servers = "group_list", _parse_group_list(data, c)
    else:
        raise c.error("missing key 'server_list' (rank table version 1.0) or 'group_list' (older zoo format)")
    status = c.string(data, "status", "")
    if status != "completed":
        raise c.error(f"status is {status!r}, expected 'completed' (the table is not finished)")

    seen_servers: dict[str, int] = {}
    seen_ranks: dict[int, str] = {}
    for index, (server_id, devices) in enumerate(servers):
        if server_id in seen_servers:
            raise c.error(f"server_id {server_id!r} appears twice (servers {seen_servers[server_id]} and {index})")
        seen_servers[server_id] = index
        seen_devices: dict[str, str] = {}
        for device, where in devices:
            if device.device_id in seen_devices:
                raise c.error(f"device_id \"{device.device_id}\" appears twice on server {server_id!r} "
                              f"({seen_devices[device.device_id]} and {where})")
            seen_devices[device.device_id] = where
            if device.rank_id in seen_ranks:
                raise c.error(f"rank_id \"{device.rank_id}\" appears twice ({seen_ranks[device.rank_id]} and {where})")
            seen_ranks[device.rank_id] = where
    size = len(seen_ranks)
    if set(seen_ranks) != set(range(size)):
        missing = sorted(set(range(size)) - set(seen_ranks))
        extra = sorted(set(seen_ranks) - set(range(size)))
        raise c.error(f"rank_id values must be 0..{size - 1} for {size} device(s); "
                      f"missing {_ids(missing)}, unexpected {_ids(extra)}")
    return RankTable(path=Path(source), format=fmt,
                     servers=tuple(Server(sid, tuple(d for d, _ in devs)) for sid, devs in servers))


def _ids(values: Sequence[int]) -> str:
    return ",".join(map(str, values)) if values else "none"


def load_rank_table(path: str | os.PathLike) -> RankTable:
    """Reads and validates the rank table at ``path``; see :func:`parse_rank_table`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RankTableError(f"{path}: rank table file not found") from None
    except OSError as exc:
        raise RankTableError(f"{path}: cannot read the rank table ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RankTableError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    return parse_rank_table(data, str(path))


# --------------------------------------------------------------------------------------
# Which server is this host, and what each local process gets
# --------------------------------------------------------------------------------------
def interface_addresses() -> set[str]:
    """IPv4 addresses of this host's network interfaces (Linux ioctl; empty elsewhere). No network traffic."""
    addresses = {"127.0.0.1"}
    try:
        import fcntl
        import struct
    except ImportError:  # not Linux/Unix
        return addresses
    siocgifaddr = 0x8915
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return addresses
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in names:
            try:
                packed = fcntl.ioctl(sock.fileno(), siocgifaddr, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue  # interface without an IPv4 address
            addresses.add(socket.inet_ntoa(packed[20:24]))
    return addresses


def hostname_addresses() -> set[str]:
    """The addresses this host's name resolves to (may consult /etc/hosts or DNS)."""
    try:
        return {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        return set()


def select_server(table: RankTable, server_id: Optional[str] = None,
                  local_addresses: Optional[Iterable[str]] = None) -> Server:
    """The server of ``table`` that this host runs.

    Args:
        table: a validated rank table.
        server_id: the server's id as written in the table (``--server_id``); wins over everything else.
        local_addresses: this host's names and addresses; default: the interface addresses and host name,
            then (for a table with several servers) what the host name resolves to.

    A table with a single server is used even when its ``server_id`` is not an address of this host
    (a note goes to stderr): the common case of a table written on this host under another address.

    Raises:
        LaunchError: ``server_id`` not in the table, several servers matching this host, or several
            servers and none matching.
    """
    if server_id is not None:
        return table.server(server_id)
    if local_addresses is not None:
        lookups = [lambda: set(local_addresses)]
    else:
        lookups = [lambda: interface_addresses() | {socket.gethostname()}, hostname_addresses]
    tried: set[str] = set()
    for lookup in lookups:
        tried |= lookup()
        matches = [s for s in table.servers if s.server_id in tried]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise LaunchError(f"{table.path}: servers {', '.join(repr(s.server_id) for s in matches)} are all this "
                              f"host; pass --server_id")
        if len(table.servers) == 1:
            break
    if len(table.servers) == 1:
        only = table.servers[0]
        print(f"note: server_id {only.server_id!r} of {table.path} is not an address of this host; "
              f"using it, the only server in the table", file=sys.stderr)
        return only
    raise LaunchError(f"{table.path}: none of the servers {', '.join(map(repr, table.server_ids))} is this host "
                      f"(addresses {', '.join(sorted(tried))}); pass --server_id")


@dataclass(frozen=True)
class RankProcess:
    """One process to start on this host: its global rank, device, environment and log file."""

    rank_id: int
    device_id: str
    env: dict[str, str]
    log_file: Path

    def to_line(self) -> str:
        """``RANK<TAB>DEVICE_ID<TAB>LOG_FILE<TAB>KEY=VALUE...``, the format the launch script reads."""
        fields = [str(self.rank_id), self.device_id, str(self.log_file), *(f"{k}={v}" for k, v in self.env.items())]
        for f in fields:
            if not f or any(ch in f for ch in "\t\n\r"):
                raise LaunchError(f"cannot pass {f!r} to the launch script: empty or contains a tab/newline")
        return "\t".join(fields)


def ascend_processes(table: RankTable, server: Server, log_dir: str | os.PathLike,
                     hccl_connect_timeout: int = DEFAULT_HCCL_CONNECT_TIMEOUT) -> list[RankProcess]:
    """The processes ``server`` starts: one per device, with its global rank id, in rank order.

    Environment of each: ``RANK_TABLE_FILE`` (absolute), ``DEVICE_ID`` (as in the table), ``RANK_ID`` (global),
    ``RANK_SIZE`` (all servers), ``RANK_START`` (first rank on this server), ``HCCL_CONNECT_TIMEOUT`` (seconds).
    Logs go to ``log_dir/rank_<RANK_ID>.log``.
    """
    if hccl_connect_timeout <= 0:
        raise LaunchError(f"hccl_connect_timeout must be a positive number of seconds, got {hccl_connect_timeout}")
    table_file = str(Path(table.path).resolve())
    log_dir = Path(log_dir)
    processes = []
    for device in sorted(server.devices, key=lambda d: d.rank_id):
        env = {"RANK_TABLE_FILE": table_file, "DEVICE_ID": device.device_id, "RANK_ID": str(device.rank_id),
               "RANK_SIZE": str(table.rank_size), "RANK_START": str(server.rank_start),
               "HCCL_CONNECT_TIMEOUT": str(hccl_connect_timeout)}
        processes.append(RankProcess(device.rank_id, device.device_id, env, log_dir / f"rank_{device.rank_id}.log"))
    return processes


def describe(table: RankTable, server: Optional[Server] = None) -> str:
    """One line: sizes of the table and, if given, which ranks ``server`` runs."""
    text = f"rank table {table.path}: {table.rank_size} rank(s) on {len(table.servers)} server(s)"
    if server is not None:
        ranks = sorted(d.rank_id for d in server.devices)
        text += f"; this host is server {server.server_id} with ranks {_ids(ranks)}"
    return text


# --------------------------------------------------------------------------------------
# Writing a rank table for this server (tools/hccl_tools.py)
# --------------------------------------------------------------------------------------
def parse_device_range(text: str) -> range:
    """``"[0,8)"`` (the zoo's form; spaces allowed) or ``"8"`` (= ``[0,8)``) -> ``range(0, 8)``."""
    m = re.fullmatch(r"\s*\[\s*(\d+)\s*,\s*(\d+)\s*\)\s*|\s*(\d+)\s*", text)
    if not m:
        raise LaunchError(f"--device_num {text!r}: expected a half-open range like \"[0,8)\" or a count like \"8\"")
    first, last = (int(m.group(1)), int(m.group(2))) if m.group(3) is None else (0, int(m.group(3)))
    if first >= last:
        raise LaunchError(f"--device_num {text!r}: the range is empty (first {first} >= last {last})")
    return range(first, last)


def read_hccn_conf(path: str | os.PathLike) -> dict[str, str]:
    """``address_<device id>=<ip>`` lines of an hccn.conf -> ``{device id: ip}``; ``{}`` if the file is absent."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    found = {}
    for line in lines:
        m = re.fullmatch(r"\s*address_(\d+)\s*=\s*(\S+)\s*", line)
        if m:
            found[str(int(m.group(1)))] = m.group(2)
    return found


def query_hccn_tool(device_id: str, tool: str = DEFAULT_HCCN_TOOL) -> Optional[str]:
    """The IP ``hccn_tool -i <id> -ip -g`` reports (``ipaddr:1.2.3.4``); None if the tool is missing or says nothing."""
    try:
        result = subprocess.run([tool, "-i", str(device_id), "-ip", "-g"], capture_output=True, text=True,
                                timeout=60, check=False)
    except (FileNotFoundError, PermissionError):
        return None
    m = re.search(r"ipaddr\s*:\s*(\S+)", result.stdout)
    return m.group(1) if result.returncode == 0 and m else None


def device_ips(device_ids: Sequence[str], hccn_conf: str | os.PathLike = DEFAULT_HCCN_CONF,
               hccn_tool: str = DEFAULT_HCCN_TOOL) -> dict[str, str]:
    """IP of each device: from ``hccn_conf`` (``address_<id>=``), else from ``hccn_tool``.

    Raises:
        LaunchError: a device found in neither source; the message names both.
    """
    conf = read_hccn_conf(hccn_conf)
    ips = {}
    for device_id in device_ids:
        ip = conf.get(str(device_id)) or query_hccn_tool(device_id, hccn_tool)
        if ip is None:
            conf_state = f"has no address_{device_id} line" if Path(hccn_conf).exists() else "does not exist"
            tool_state = ("printed no ipaddr" if shutil.which(hccn_tool) else "is not found (not on PATH)")
            raise LaunchError(f"no IP address for device {device_id}: {hccn_conf} {conf_state}, and "
                              f"'{hccn_tool} -i {device_id} -ip -g' {tool_state}. Configure the device NICs "
                              f"(hccn_tool -i {device_id} -ip -s ...) or pass --hccn_conf")
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise LaunchError(f"device {device_id}: {ip!r} is not an IP address") from None
        ips[str(device_id)] = ip
    return ips


def build_rank_table(server_id: str, devices: Sequence[tuple[str, str]]) -> dict:
    """A single-server version 1.0 rank table; ``devices`` are ``(device_id, device_ip)`` in rank order."""
    return {
        "version": "1.0",
        "server_count": "1",
        "server_list": [{
            "server_id": server_id,
            "device": [{"device_id": str(d), "device_ip": ip, "rank_id": str(rank)}
                       for rank, (d, ip) in enumerate(devices)],
            "host_nic_ip": "reserve",
        }],
        "status": "completed",
    }


def default_rank_table_name(indices: Iterable[int], server_id: str) -> str:
    """The zoo's name: ``hccl_<n>p_<indices joined>_<server_ip>.json``, e.g. ``hccl_8p_01234567_10.0.0.1.json``."""
    indices = list(indices)
    return f"hccl_{len(indices)}p_{''.join(map(str, indices))}_{server_id}.json"


def default_server_ip() -> str:
    """The host's IP as its name resolves (the zoo's default for ``--server_ip``)."""
    return socket.gethostbyname(socket.gethostname())


def write_json_atomic(data: Mapping, path: str | os.PathLike) -> Path:
    """Write ``data`` as indented JSON; the file appears under its name only when complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(data, indent=4) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------
def _timeout_default() -> int:
    value = os.environ.get("HCCL_CONNECT_TIMEOUT", str(DEFAULT_HCCL_CONNECT_TIMEOUT))
    try:
        return int(value)
    except ValueError:
        raise LaunchError(f"HCCL_CONNECT_TIMEOUT={value!r} in the environment is not an integer") from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.launch", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate a rank table and print a summary")
    check.add_argument("--rank_table", required=True, help="HCCL rank table JSON")
    plan = sub.add_parser("ascend-plan", help="print one tab-separated line per process this host starts")
    plan.add_argument("--rank_table", required=True, help="HCCL rank table JSON")
    plan.add_argument("--log_dir", required=True, help="directory of the per-rank logs rank_<r>.log")
    plan.add_argument("--server_id", default=None,
                      help="this host's server_id in the table (default: matched against the host's addresses)")
    plan.add_argument("--hccl_connect_timeout", type=int, default=None,
                      help=f"seconds (default: $HCCL_CONNECT_TIMEOUT or {DEFAULT_HCCL_CONNECT_TIMEOUT})")
    args = parser.parse_args(argv)
    try:
        table = load_rank_table(args.rank_table)
        if args.command == "check":
            print(describe(table))
            return 0
        server = select_server(table, args.server_id)
        timeout = args.hccl_connect_timeout if args.hccl_connect_timeout is not None else _timeout_default()
        lines = [p.to_line() for p in ascend_processes(table, server, args.log_dir, timeout)]
    except (RankTableError, LaunchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(describe(table, server), file=sys.stderr)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
