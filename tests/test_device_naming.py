"""A record names the CPU it was measured on: its model and the instruction set torch dispatches to."""
import torch

from saflex_cli.compute import runtime


def test_cpu_description_names_model_capability_and_threads(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
                       "model name\t: AMD EPYC\n\nprocessor\t: 1\nmodel name\t: other\n")
    real_path = runtime.Path
    monkeypatch.setattr(runtime, "Path", lambda p: cpuinfo if p == "/proc/cpuinfo" else real_path(p))
    monkeypatch.setattr(runtime, "cpu_capability", lambda: "AVX2")
    description = runtime.device_description(torch.device("cpu"))
    assert description == f"cpu: AMD EPYC (family 25 model 17), AVX2, {torch.get_num_threads()} threads"


def test_cpu_capability_is_torchs_dispatch_level():
    assert runtime.cpu_capability() == torch.backends.cpu.get_cpu_capability()


def test_a_benchmark_names_the_cpu_kind_and_threads(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_model", lambda: "AMD EPYC (family 25 model 1)")
    monkeypatch.setattr(runtime, "cpu_capability", lambda: "AVX2")
    assert runtime.hardware(torch.device("cpu")) == {"cpu_model": "AMD EPYC (family 25 model 1)",
                                                      "cpu_capability": "AVX2", "threads": torch.get_num_threads()}
    assert runtime.machine_kind(torch.device("cpu")) == {"cpu_model": "AMD EPYC (family 25 model 1)",
                                                         "cpu_capability": "AVX2"}
