"""Launch machinery: rank tables (src/launch.py), tools/hccl_tools.py and the scripts/run_*pretrain*.sh launchers.

The launchers are checked with --dry_run (exact commands and per-rank environment, no hardware needed) and
by real runs against a stub entry point (PRETRAIN_ENTRY) that prints its arguments and environment.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from src import launch
from src.launch import (
    LaunchError,
    RankTableError,
    ascend_processes,
    load_rank_table,
    parse_device_range,
    parse_rank_table,
    select_server,
)
from tools.hccl_tools import main as hccl_tools_main

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
ENTRY = str(ROOT / "run_pretrain.py")
CONFIG = str(ROOT / "configs" / "pretrain_base.yaml")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

STUB = r'''
import json, os, sys, time
keys = ("RANK_TABLE_FILE", "DEVICE_ID", "RANK_ID", "RANK_SIZE", "RANK_START", "HCCL_CONNECT_TIMEOUT", "MS_ROLE",
        "MS_WORKER_NUM", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE")
print("STUB " + json.dumps({"argv": sys.argv[1:], "env": {k: os.environ[k] for k in keys if k in os.environ}}),
      flush=True)
if "STUB_FAIL_RANK" in os.environ and os.environ.get("RANK_ID") == os.environ["STUB_FAIL_RANK"]:
    print("stub: failing on purpose", flush=True)
    sys.exit(3)
time.sleep(float(os.environ.get("STUB_SLEEP", "0")))
'''


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------
def v1_table(num_devices: int = 8, servers=("10.0.0.1",)) -> dict:
    """A version 1.0 rank table: ``num_devices`` per server, global rank ids in server order."""
    server_list = []
    for s, server_id in enumerate(servers):
        devices = [{"device_id": str(d), "device_ip": f"192.168.{100 + d}.{10 + s}",
                    "rank_id": str(s * num_devices + d)} for d in range(num_devices)]
        server_list.append({"server_id": server_id, "device": devices, "host_nic_ip": "reserve"})
    return {"version": "1.0", "server_count": str(len(servers)), "server_list": server_list, "status": "completed"}


def group_list_table(num_devices: int = 8, server_id: str = "10.0.0.1") -> dict:
    """The same devices in the older zoo format."""
    instances = [{"devices": [{"device_id": str(d), "device_ip": f"192.168.{100 + d}.10"}], "rank_id": str(d),
                  "server_id": server_id} for d in range(num_devices)]
    return {"board_id": "0x0000", "chip_info": "910", "deploy_mode": "lab", "group_count": "1",
            "group_list": [{"device_num": str(num_devices), "server_num": "1", "group_name": "",
                            "instance_count": str(num_devices), "instance_list": instances}],
            "para_plane_nic_location": "device", "para_plane_nic_num": str(num_devices), "status": "completed"}


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, indent=4))
    return path


@pytest.fixture
def stub(tmp_path) -> Path:
    path = tmp_path / "fake_pretrain.py"
    path.write_text(STUB)
    return path


@pytest.fixture
def data_dir(tmp_path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def script_env(**extra: str) -> dict:
    env = dict(os.environ)
    for key in ("HCCL_CONNECT_TIMEOUT", "DEVICE_ID", "RANK_ID", "RANK_SIZE", "RANK_START", "RANK_TABLE_FILE"):
        env.pop(key, None)
    env["PYTHON"] = sys.executable
    # msrun and mpirun start `python` from PATH: the interpreter running the tests.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra)
    return env


def run_script(name: str, *args, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPTS / name), *map(str, args)], capture_output=True, text=True,
                          env=script_env(**env), timeout=timeout, check=False)


def stub_records(text: str) -> list[dict]:
    return [json.loads(line[len("STUB "):]) for line in text.splitlines() if line.startswith("STUB ")]


def dry_run_ranks(stdout: str) -> list[tuple[dict, list[str], str]]:
    """Ascend dry-run lines ``env K=V ... CMD > LOG 2>&1 &`` -> [(env, command, log)]."""
    ranks = []
    for line in stdout.splitlines():
        if line.startswith("#") or line == "wait":
            continue
        words = shlex.split(line)
        assert words[0] == "env" and words[-4] == ">" and words[-2:] == ["2>&1", "&"], line
        env = {}
        i = 1
        while re.match(r"[A-Z_]+=", words[i]):
            key, value = words[i].split("=", 1)
            env[key] = value
            i += 1
        ranks.append((env, words[i:-4], words[-3]))
    return ranks


EXTRA = ["--train.epochs", "1", "--name", "two words", "--flag=x", "--"]


# --------------------------------------------------------------------------------------
# Rank tables
# --------------------------------------------------------------------------------------
def test_load_valid_8_device_table(tmp_path):
    path = write_json(tmp_path / "hccl_8p.json", v1_table())
    table = load_rank_table(path)
    assert table.format == "1.0" and table.rank_size == 8 and table.server_ids == ["10.0.0.1"]
    devices = table.servers[0].devices
    assert [(d.device_id, d.device_ip, d.rank_id) for d in devices] == [
        (str(i), f"192.168.{100 + i}.10", i) for i in range(8)]
    assert table.servers[0].rank_start == 0


def test_group_list_format_reads_like_version_1(tmp_path):
    old = load_rank_table(write_json(tmp_path / "old.json", group_list_table()))
    new = load_rank_table(write_json(tmp_path / "new.json", v1_table()))
    assert old.format == "group_list"
    assert old.servers == new.servers


def test_two_servers_have_global_rank_ids(tmp_path):
    table = load_rank_table(write_json(tmp_path / "hccl_16p.json", v1_table(8, ("10.0.0.1", "10.0.0.2"))))
    assert table.rank_size == 16
    assert [s.rank_start for s in table.servers] == [0, 8]


def _set(path, value):
    """A mutation of the valid 8-device table: set (or delete, value=DELETE) the field at ``path``."""
    def mutate(data):
        *parents, last = path
        for key in parents:
            data = data[key]
        if value is DELETE:
            del data[last]
        else:
            data[last] = value
    return mutate


DELETE = object()
DEV = ("server_list", 0, "device")

RANK_TABLE_ERRORS = {
    "missing status": (_set(("status",), DELETE), "missing key 'status' in the top level"),
    "missing device_ip": (_set((*DEV, 3, "device_ip"), DELETE), "missing key 'device_ip' in server_list[0].device[3]"),
    "missing server_list": (_set(("server_list",), DELETE), "missing key 'server_list'"),
    "rank_id not a string": (_set((*DEV, 2, "rank_id"), 2),
                             ("server_list[0].device[2].rank_id must be a string (HCCL rank tables write every value "
                              "as a string), got 2 (int)")),
    "server_count not a string": (_set(("server_count",), 1), "server_count must be a string"),
    "device_id not a number": (_set((*DEV, 1, "device_id"), "one"),
                               ("server_list[0].device[1].device_id must be a non-negative integer written as a "
                                "string, got 'one'")),
    "device_ip not an address": (_set((*DEV, 1, "device_ip"), "192.168.1"),
                                 "server_list[0].device[1].device_ip must be an IP address, got '192.168.1'"),
    "duplicate rank ids": (_set((*DEV, 5, "rank_id"), "4"),
                           "rank_id \"4\" appears twice (server_list[0].device[4] and server_list[0].device[5])"),
    "rank ids not 0..N-1": (_set((*DEV, 7, "rank_id"), "8"),
                            "rank_id values must be 0..7 for 8 device(s); missing 7, unexpected 8"),
    "duplicate device ids": (_set((*DEV, 6, "device_id"), "1"),
                             ("device_id \"1\" appears twice on server '10.0.0.1' (server_list[0].device[1] and "
                              "server_list[0].device[6])")),
    "status not completed": (_set(("status",), "pending"), "status is 'pending', expected 'completed'"),
    "server_count disagrees": (_set(("server_count",), "2"), "server_count is \"2\" but server_list has 1 server(s)"),
    "empty device list": (_set((*DEV,), []), "server_list[0].device is empty"),
    "unknown version": (_set(("version",), "2.0"), "version is '2.0'"),
}


@pytest.mark.parametrize("case", sorted(RANK_TABLE_ERRORS))
def test_rank_table_errors_name_file_and_field(tmp_path, case):
    mutate, message = RANK_TABLE_ERRORS[case]
    data = v1_table()
    mutate(data)
    path = write_json(tmp_path / "hccl_bad.json", data)
    with pytest.raises(RankTableError) as err:
        load_rank_table(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_rank_table_not_json_or_missing(tmp_path):
    path = tmp_path / "hccl.json"
    path.write_text('{"version": "1.0",,}')
    with pytest.raises(RankTableError,
                       match=r"hccl\.json: not valid JSON \(Expecting property name .* line 1 column 19\)"):
        load_rank_table(path)
    with pytest.raises(RankTableError, match=r"nothere\.json: rank table file not found"):
        load_rank_table(tmp_path / "nothere.json")
    with pytest.raises(RankTableError, match="top level must be a JSON object, got list"):
        parse_rank_table([], "x.json")


def test_rank_table_duplicate_servers_and_group_list_errors():
    data = v1_table(2, ("10.0.0.1", "10.0.0.1"))
    with pytest.raises(RankTableError, match=r"t\.json: server_id '10\.0\.0\.1' appears twice \(servers 0 and 1\)"):
        parse_rank_table(data, "t.json")
    old = group_list_table()
    old["group_count"] = "2"
    with pytest.raises(RankTableError, match=r"old\.json: group_count is \"2\" but group_list has 1 group\(s\)"):
        parse_rank_table(old, "old.json")
    old = group_list_table()
    old["group_list"][0]["instance_list"][1]["devices"].append({"device_id": "9", "device_ip": "1.2.3.4"})
    with pytest.raises(RankTableError, match=r"instance_list\[1\]\.devices must hold exactly one device"):
        parse_rank_table(old, "old.json")


# --------------------------------------------------------------------------------------
# This host's processes
# --------------------------------------------------------------------------------------
def test_second_server_of_two_launches_global_ranks(tmp_path):
    path = write_json(tmp_path / "hccl_16p.json", v1_table(8, ("10.0.0.1", "10.0.0.2")))
    table = load_rank_table(path)
    for server in (select_server(table, "10.0.0.2"), select_server(table, local_addresses={"10.0.0.2", "127.0.0.1"})):
        assert server.server_id == "10.0.0.2"
    procs = ascend_processes(table, table.servers[1], tmp_path / "logs", hccl_connect_timeout=900)
    assert [p.rank_id for p in procs] == list(range(8, 16))
    assert procs[0].env == {"RANK_TABLE_FILE": str(path.resolve()), "DEVICE_ID": "0", "RANK_ID": "8",
                            "RANK_SIZE": "16", "RANK_START": "8", "HCCL_CONNECT_TIMEOUT": "900"}
    assert procs[7].log_file == tmp_path / "logs" / "rank_15.log"
    fields = procs[1].to_line().split("\t")
    assert fields[:3] == ["9", "1", str(tmp_path / "logs" / "rank_9.log")]
    assert "RANK_ID=9" in fields[3:] and "DEVICE_ID=1" in fields[3:]


def test_select_server_errors_and_single_server_fallback(tmp_path, capsys):
    table = load_rank_table(write_json(tmp_path / "hccl_16p.json", v1_table(8, ("10.0.0.1", "10.0.0.2"))))
    with pytest.raises(LaunchError, match=r"no server with server_id '10\.0\.0\.3'; the table has '10\.0\.0\.1', "):
        select_server(table, "10.0.0.3")
    with pytest.raises(LaunchError, match=r"none of the servers .* is this host \(addresses 127\.0\.0\.1\); pass "
                                          r"--server_id"):
        select_server(table, local_addresses={"127.0.0.1"})
    single = load_rank_table(write_json(tmp_path / "hccl_8p.json", v1_table()))
    assert select_server(single, local_addresses={"127.0.0.1"}).server_id == "10.0.0.1"
    assert "not an address of this host; using it, the only server" in capsys.readouterr().err


def test_ascend_plan_cli(tmp_path, capsys):
    path = write_json(tmp_path / "hccl.json", v1_table(2))
    assert launch.main(["ascend-plan", "--rank_table", str(path), "--log_dir", str(tmp_path / "logs"),
                        "--hccl_connect_timeout", "30"]) == 0
    out, err = capsys.readouterr()
    lines = [line.split("\t") for line in out.splitlines()]
    assert [f[:3] for f in lines] == [["0", "0", str(tmp_path / "logs" / "rank_0.log")],
                                      ["1", "1", str(tmp_path / "logs" / "rank_1.log")]]
    assert lines[1][3:] == [f"RANK_TABLE_FILE={path.resolve()}", "DEVICE_ID=1", "RANK_ID=1", "RANK_SIZE=2",
                            "RANK_START=0", "HCCL_CONNECT_TIMEOUT=30"]
    assert "2 rank(s) on 1 server(s); this host is server 10.0.0.1 with ranks 0,1" in err
    assert launch.main(["check", "--rank_table", str(path)]) == 0
    assert capsys.readouterr().out == f"rank table {path}: 2 rank(s) on 1 server(s)\n"
    data = v1_table(2)
    data["status"] = "pending"
    write_json(path, data)
    assert launch.main(["ascend-plan", "--rank_table", str(path), "--log_dir", "logs"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and f"error: {path}: status is 'pending'" in err


# --------------------------------------------------------------------------------------
# tools/hccl_tools.py
# --------------------------------------------------------------------------------------
HCCN_CONF = "\n".join(["# written by hccn_tool"] + [f"address_{d}=192.98.{d}.1{d}" for d in range(8)]
                      + [f"netmask_{d}=255.255.255.0" for d in range(8)]) + "\n"


def test_hccl_tools_writes_the_zoo_table_from_hccn_conf(tmp_path):
    conf = tmp_path / "hccn.conf"
    conf.write_text(HCCN_CONF)
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "hccl_tools.py"), "--device_num", "[0,4)",
                             "--server_ip", "10.0.0.1", "--hccn_conf", str(conf)],
                            cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    written = tmp_path / "hccl_4p_0123_10.0.0.1.json"
    expected = {
        "version": "1.0",
        "server_count": "1",
        "server_list": [{
            "server_id": "10.0.0.1",
            "device": [{"device_id": str(d), "device_ip": f"192.98.{d}.1{d}", "rank_id": str(d)} for d in range(4)],
            "host_nic_ip": "reserve",
        }],
        "status": "completed",
    }
    assert written.read_text() == json.dumps(expected, indent=4) + "\n"
    assert load_rank_table(written).rank_size == 4
    assert f"wrote {written.name} (4 device(s) on server 10.0.0.1)" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hccl_4p_0123_10.0.0.1.json", "hccn.conf"]  # no temp left


def test_hccl_tools_visible_devices_and_output(tmp_path):
    conf = tmp_path / "hccn.conf"
    conf.write_text(HCCN_CONF)
    out = tmp_path / "tables" / "mine.json"
    assert hccl_tools_main(["--device_num", "[1,3)", "--visible_devices", "4,5,6,7", "--server_ip", "10.0.0.9",
                            "--hccn_conf", str(conf), "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["server_list"][0]["device"] == [{"device_id": "5", "device_ip": "192.98.5.15", "rank_id": "0"},
                                                {"device_id": "6", "device_ip": "192.98.6.16", "rank_id": "1"}]


def test_hccl_tools_asks_hccn_tool_for_missing_devices(tmp_path):
    conf = tmp_path / "hccn.conf"
    conf.write_text("address_0=192.98.0.10\n")
    tool = tmp_path / "hccn_tool"
    tool.write_text('#!/bin/sh\n# fake hccn_tool: hccn_tool -i ID -ip -g\n'
                    'echo "ipaddr:10.20.$2.1"\necho "netmask:255.255.255.0"\n')
    tool.chmod(0o755)
    out = tmp_path / "t.json"
    assert hccl_tools_main(["--device_num", "[0,2)", "--server_ip", "10.0.0.1", "--hccn_conf", str(conf),
                            "--hccn_tool", str(tool), "--output", str(out)]) == 0
    assert [d["device_ip"] for d in json.loads(out.read_text())["server_list"][0]["device"]] == ["192.98.0.10",
                                                                                                "10.20.1.1"]


def test_hccl_tools_without_any_source_names_both(tmp_path, capsys):
    missing = tmp_path / "no_hccn.conf"
    assert hccl_tools_main(["--device_num", "[0,2)", "--server_ip", "10.0.0.1", "--hccn_conf", str(missing),
                            "--hccn_tool", "no-such-hccn_tool", "--output", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err
    assert (f"error: no IP address for device 0: {missing} does not exist, and 'no-such-hccn_tool -i 0 -ip -g' is "
            f"not found (not on PATH)") in err
    assert not (tmp_path / "t.json").exists()


def test_device_range():
    assert parse_device_range("[0,8)") == range(8)
    assert parse_device_range(" [ 4 , 8 ) ") == range(4, 8)
    assert parse_device_range("16") == range(16)
    for bad in ("[3,3)", "0-8", "[0,8]"):
        with pytest.raises(LaunchError, match="--device_num"):
            parse_device_range(bad)


# --------------------------------------------------------------------------------------
# Scripts: --help, argument errors, dry runs
# --------------------------------------------------------------------------------------
ALL_SCRIPTS = ["run_standalone_pretrain.sh", "run_distributed_pretrain_ascend.sh", "run_distributed_pretrain_gpu.sh",
               "run_distributed_pretrain_msrun.sh"]


@pytest.mark.parametrize("name", ALL_SCRIPTS)
def test_script_help(name):
    result = run_script(name, "--help")
    assert result.returncode == 0 and result.stdout.count("Usage: bash scripts/" + name) == 1
    assert "--dry_run" in result.stdout and "set -euo" not in result.stdout


@pytest.mark.parametrize("name, args", [
    ("run_standalone_pretrain.sh", []),
    ("run_distributed_pretrain_ascend.sh", []),
    ("run_distributed_pretrain_gpu.sh", ["2"]),
    ("run_distributed_pretrain_msrun.sh", ["2"]),
])
def test_scripts_need_an_existing_data_dir(tmp_path, name, args):
    result = run_script(name, *args, "--dry_run")
    assert result.returncode == 2 and "error: DATA_DIR is required (see --help)" in result.stderr
    extra = ["hccl.json"] if "ascend" in name else []
    result = run_script(name, *args, tmp_path / "missing", *extra, "--dry_run")
    assert result.returncode == 2 and f"error: DATA_DIR '{tmp_path / 'missing'}' is not a directory" in result.stderr
    assert result.stdout == ""


def test_scripts_reject_unknown_options(data_dir):
    result = run_script("run_distributed_pretrain_gpu.sh", "2", data_dir, "--epochs", "3")
    assert result.returncode == 2 and "unknown option --epochs" in result.stderr and "go after --" in result.stderr


def test_ascend_dry_run_prints_each_rank_environment(tmp_path, data_dir):
    table = write_json(tmp_path / "hccl_8p.json", v1_table())
    out = tmp_path / "out"
    result = run_script("run_distributed_pretrain_ascend.sh", data_dir, table, out, "--dry_run", "--", *EXTRA)
    assert result.returncode == 0, result.stderr
    ranks = dry_run_ranks(result.stdout)
    assert len(ranks) == 8 and result.stdout.rstrip().endswith("\nwait")
    for r, (env, command, log) in enumerate(ranks):
        assert env == {"RANK_TABLE_FILE": str(table.resolve()), "DEVICE_ID": str(r), "RANK_ID": str(r),
                       "RANK_SIZE": "8", "RANK_START": "0", "HCCL_CONNECT_TIMEOUT": "600"}
        assert command == [sys.executable, ENTRY, "--config", CONFIG, "--data_dir", str(data_dir),
                           "--output_dir", str(out), "--device_target", "Ascend", "--distribute", "true", *EXTRA]
        assert log == str(out / "logs" / f"rank_{r}.log")
    assert not out.exists()  # a dry run creates nothing


def test_ascend_dry_run_second_server_named_options(tmp_path, data_dir):
    table = write_json(tmp_path / "hccl_16p.json", v1_table(8, ("10.0.0.1", "10.0.0.2")))
    result = run_script("run_distributed_pretrain_ascend.sh", "--data_dir", data_dir, "--rank_table_file", table,
                        "--output_dir=" + str(tmp_path / "o"), "--server_id", "10.0.0.2",
                        "--hccl_connect_timeout", "1200", "--dry_run")
    assert result.returncode == 0, result.stderr
    envs = [env for env, _, _ in dry_run_ranks(result.stdout)]
    assert [(e["RANK_ID"], e["DEVICE_ID"]) for e in envs] == [(str(8 + d), str(d)) for d in range(8)]
    assert {(e["RANK_SIZE"], e["RANK_START"], e["HCCL_CONNECT_TIMEOUT"]) for e in envs} == {("16", "8", "1200")}


def test_gpu_dry_run_prints_the_mpirun_line(tmp_path, data_dir):
    hostfile = tmp_path / "hosts"
    hostfile.write_text("localhost slots=4\n")
    out = tmp_path / "out"
    result = run_script("run_distributed_pretrain_gpu.sh", "4", data_dir, out, "--hostfile", hostfile, "--dry_run",
                        "--", *EXTRA)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"# 4 rank(s), logs under {out / 'logs'}" and len(lines) == 2
    assert shlex.split(lines[1]) == [
        "mpirun", "-n", "4", *(["--allow-run-as-root"] if IS_ROOT else []), "--hostfile", str(hostfile),
        "--output-filename", str(out / "logs"), "--merge-stderr-to-stdout",
        sys.executable, ENTRY, "--config", CONFIG, "--data_dir", str(data_dir), "--output_dir", str(out),
        "--device_target", "GPU", "--distribute", "true", *EXTRA]


def test_msrun_dry_run_prints_the_msrun_line(tmp_path, data_dir):
    out = tmp_path / "out"
    result = run_script("run_distributed_pretrain_msrun.sh", "4", data_dir, out, "--device_target", "CPU",
                        "--local_worker_num", "2", "--master_port", "9001", "--node_rank", "1",
                        "--config", "my.yaml", "--dry_run", "--", *EXTRA)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"# 2 of 4 worker(s) on this machine, logs {out / 'logs'}/worker_<r>.log"
    assert shlex.split(lines[1]) == [
        "msrun", "--worker_num=4", "--local_worker_num=2", "--master_addr=127.0.0.1", "--master_port=9001",
        "--node_rank=1", f"--log_dir={out / 'logs'}", "--join=True",
        ENTRY, "--config", "my.yaml", "--data_dir", str(data_dir), "--output_dir", str(out),
        "--device_target", "CPU", "--distribute", "true", *EXTRA]
    bad = run_script("run_distributed_pretrain_msrun.sh", "2", data_dir, "--local_worker_num", "3", "--dry_run")
    assert bad.returncode == 2 and "--local_worker_num must be 1..2, got '3'" in bad.stderr


def test_standalone_dry_run(tmp_path, data_dir):
    out = tmp_path / "out"
    result = run_script("run_standalone_pretrain.sh", "--device_target", "Ascend", "--device_id", "3", data_dir, out,
                        "--dry_run", "--", *EXTRA)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"# log {out / 'logs' / 'standalone.log'}"
    assert shlex.split(lines[1]) == [
        sys.executable, ENTRY, "--config", CONFIG, "--data_dir", str(data_dir), "--output_dir", str(out),
        "--device_target", "Ascend", "--device_id", "3", "--distribute", "false", *EXTRA,
        "2>&1", "|", "tee", str(out / "logs" / "standalone.log")]


def test_default_output_dir_is_in_the_repository(data_dir):
    result = run_script("run_standalone_pretrain.sh", data_dir, "--dry_run")
    assert result.returncode == 0, result.stderr
    assert shlex.split(result.stdout.splitlines()[1])[:8] == [
        sys.executable, ENTRY, "--config", CONFIG, "--data_dir", str(data_dir), "--output_dir",
        str(ROOT / "output" / "pretrain")]


# --------------------------------------------------------------------------------------
# Scripts: real runs against a stub entry point
# --------------------------------------------------------------------------------------
def test_malformed_rank_table_starts_nothing(tmp_path, data_dir, stub):
    data = v1_table(2, ("127.0.0.1",))
    data["server_list"][0]["device"][1]["rank_id"] = "0"
    table = write_json(tmp_path / "hccl.json", data)
    out = tmp_path / "out"
    result = run_script("run_distributed_pretrain_ascend.sh", data_dir, table, out, PRETRAIN_ENTRY=str(stub))
    assert result.returncode == 2
    assert f"error: {table}: rank_id \"0\" appears twice" in result.stderr
    assert result.stdout == "" and not out.exists()


def test_ascend_run_gives_each_rank_its_environment(tmp_path, data_dir, stub):
    table = write_json(tmp_path / "hccl.json", v1_table(2, ("127.0.0.1",)))
    out = tmp_path / "out"
    result = run_script("run_distributed_pretrain_ascend.sh", data_dir, table, out, "--", *EXTRA,
                        PRETRAIN_ENTRY=str(stub))
    assert result.returncode == 0, result.stderr
    assert f"all 2 rank(s) finished; logs in {out / 'logs'}" in result.stdout
    for r in range(2):
        [record] = stub_records((out / "logs" / f"rank_{r}.log").read_text())
        assert record["env"] == {"RANK_TABLE_FILE": str(table.resolve()), "DEVICE_ID": str(r), "RANK_ID": str(r),
                                 "RANK_SIZE": "2", "RANK_START": "0", "HCCL_CONNECT_TIMEOUT": "600"}
        assert record["argv"] == ["--config", CONFIG, "--data_dir", str(data_dir), "--output_dir", str(out),
                                  "--device_target", "Ascend", "--distribute", "true", *EXTRA]


def test_ascend_run_fails_fast_when_a_rank_fails(tmp_path, data_dir, stub):
    table = write_json(tmp_path / "hccl.json", v1_table(3, ("127.0.0.1",)))
    out = tmp_path / "out"
    start = time.monotonic()
    result = run_script("run_distributed_pretrain_ascend.sh", data_dir, table, out, PRETRAIN_ENTRY=str(stub),
                        STUB_FAIL_RANK="1", STUB_SLEEP="60")
    assert time.monotonic() - start < 30  # the other ranks were stopped, not waited for
    assert result.returncode == 3
    assert f"error: rank 1 failed with exit code 3; last lines of {out / 'logs' / 'rank_1.log'}" in result.stderr
    assert "stub: failing on purpose" in result.stderr
    assert "error: distributed pretraining failed (exit code 3)" in result.stderr


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun (Open MPI) not installed")
def test_gpu_script_runs_ranks_under_mpirun(tmp_path, data_dir, stub):
    out = tmp_path / "out"
    result = run_script("run_distributed_pretrain_gpu.sh", "2", data_dir, out, "--", *EXTRA, PRETRAIN_ENTRY=str(stub))
    assert result.returncode == 0, result.stdout + result.stderr
    records = [rec for f in sorted((out / "logs").rglob("stdout")) for rec in stub_records(f.read_text())]
    assert sorted(r["env"]["OMPI_COMM_WORLD_RANK"] for r in records) == ["0", "1"]
    for record in records:
        assert record["env"]["OMPI_COMM_WORLD_SIZE"] == "2"
        assert record["argv"] == ["--config", CONFIG, "--data_dir", str(data_dir), "--output_dir", str(out),
                                  "--device_target", "GPU", "--distribute", "true", *EXTRA]


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(shutil.which("msrun", path=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
                    is None, reason="msrun (installed with mindspore) not found")
def test_msrun_script_runs_workers(tmp_path, data_dir, stub):
    out = tmp_path / "out"
    result = run_script("run_distributed_pretrain_msrun.sh", "2", data_dir, out, "--device_target", "CPU",
                        "--master_port", _free_loopback_port(), "--", *EXTRA, PRETRAIN_ENTRY=str(stub))
    assert result.returncode == 0, result.stdout + result.stderr
    for r in range(2):
        [record] = stub_records((out / "logs" / f"worker_{r}.log").read_text())
        assert record["env"]["RANK_ID"] == str(r) and record["env"]["MS_ROLE"] == "MS_WORKER"
        assert record["env"]["MS_WORKER_NUM"] == "2"
        assert record["argv"] == ["--config", CONFIG, "--data_dir", str(data_dir), "--output_dir", str(out),
                                  "--device_target", "CPU", "--distribute", "true", *EXTRA]


def test_standalone_run(tmp_path, data_dir, stub):
    out = tmp_path / "out"
    result = run_script("run_standalone_pretrain.sh", "--device_id", "5", data_dir, out, "--", *EXTRA,
                        PRETRAIN_ENTRY=str(stub))
    assert result.returncode == 0, result.stderr
    [record] = stub_records((out / "logs" / "standalone.log").read_text())
    assert stub_records(result.stdout) == [record]  # the output also reaches the terminal
    assert "RANK_ID" not in record["env"] and "DEVICE_ID" not in record["env"]
    assert record["argv"] == ["--config", CONFIG, "--data_dir", str(data_dir), "--output_dir", str(out),
                              "--device_id", "5", "--distribute", "false", *EXTRA]
    failed = run_script("run_standalone_pretrain.sh", data_dir, out, PRETRAIN_ENTRY=str(stub), RANK_ID="0",
                        STUB_FAIL_RANK="0")
    assert failed.returncode == 3 and "error: pretraining failed (exit code 3)" in failed.stderr
