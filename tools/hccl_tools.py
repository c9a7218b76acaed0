"""Write the HCCL rank table of this server (Ascend), for scripts/run_distributed_pretrain_ascend.sh.

    python tools/hccl_tools.py                                  # devices 0-7 -> hccl_8p_01234567_<host ip>.json
    python tools/hccl_tools.py --device_num "[0,4)" --server_ip 10.0.0.1 --output hccl_4p.json
    python tools/hccl_tools.py --device_num "[0,4)" --visible_devices 4,5,6,7   # a container that sees chips 4-7

``--device_num "[a,b)"`` selects positions a..b-1 of ``--visible_devices`` (the zoo's logical ids); the table
holds the device ids found there, with rank ids 0..n-1 in that order. Each device's IP comes from
``/etc/hccn.conf`` (``address_<device id>=<ip>``, path set by ``--hccn_conf``) or, for a device it does not
list, from ``hccn_tool -i <device id> -ip -g``. On Ascend 910 (not 910B) HCCL only accepts ranges within one
group of four chips, or all eight. For several servers, write one table per server and merge their
``server_list`` entries, renumbering ``rank_id`` so that it runs 0..N-1 over all servers.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

# An entry point run from anywhere: make the repository's `src` package importable.
_REPO_ROOT = str(pathlib.Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from src.launch import (  # noqa: E402
    DEFAULT_HCCN_CONF,
    DEFAULT_HCCN_TOOL,
    LaunchError,
    RankTableError,
    build_rank_table,
    default_rank_table_name,
    default_server_ip,
    device_ips,
    parse_device_range,
    parse_rank_table,
    write_json_atomic,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device_num", default="[0,8)",
                        help='half-open range of positions in --visible_devices, e.g. "[0,4)"; or a count "4"')
    parser.add_argument("--visible_devices", default="0,1,2,3,4,5,6,7",
                        help="device ids this system sees, comma-separated")
    parser.add_argument("--server_ip", default=None, help="this server's IP (default: what the host name resolves to)")
    parser.add_argument("--hccn_conf", default=DEFAULT_HCCN_CONF, help="file with address_<device id>=<ip> lines")
    parser.add_argument("--hccn_tool", default=DEFAULT_HCCN_TOOL, help="hccn_tool executable, asked for devices "
                        "the hccn.conf does not list")
    parser.add_argument("--output", default=None,
                        help="rank table to write (default: hccl_<n>p_<positions>_<server_ip>.json in the current "
                             "directory)")
    args = parser.parse_args(argv)

    try:
        positions = parse_device_range(args.device_num)
        visible = [v.strip() for v in args.visible_devices.split(",") if v.strip()]
        if not all(v.isdigit() for v in visible):
            raise LaunchError(f"--visible_devices {args.visible_devices!r}: expected comma-separated device ids")
        if positions.stop > len(visible):
            raise LaunchError(f"--device_num {args.device_num} needs {positions.stop} visible devices but "
                              f"--visible_devices lists {len(visible)}: {','.join(visible)}")
        devices = [visible[i] for i in positions]
        ips = device_ips(devices, args.hccn_conf, args.hccn_tool)
        server_ip = args.server_ip or default_server_ip()
        if server_ip.startswith("127.") and not args.server_ip:
            print(f"warning: the host name resolves to {server_ip}, a loopback address; pass --server_ip for a "
                  f"table used by several servers", file=sys.stderr)
        table = build_rank_table(server_ip, [(d, ips[d]) for d in devices])
        output = pathlib.Path(args.output or default_rank_table_name(positions, server_ip))
        parse_rank_table(table, str(output))  # the table we write must pass our own validation
    except (LaunchError, RankTableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_json_atomic(table, output)
    for device in table["server_list"][0]["device"]:
        print(f"rank {device['rank_id']}: device {device['device_id']}, ip {device['device_ip']}")
    print(f"wrote {output} ({len(devices)} device(s) on server {server_ip})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
