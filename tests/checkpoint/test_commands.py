"""``wse convert`` and ``wse inspect`` as a user runs them."""
import json
import subprocess
import sys

import torch
from safetensors.torch import save_file

from wse.cli import main


def training_file(path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    optimizer = torch.optim.AdamW(net.parameters(), lr=0.01)
    net(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    torch.save({"model": {f"module.{k}": v for k, v in net.state_dict().items()}, "optimizer": optimizer.state_dict(),
                "step": 1}, path)
    return net


def test_convert_prints_one_line_and_writes_the_target(tmp_path, capsys):
    training_file(tmp_path / "train.pt")
    code = main(["convert", str(tmp_path / "train.pt"), str(tmp_path / "out.ckpt"), "--to", "lightning"])
    out = capsys.readouterr()
    assert code == 0 and out.err == ""
    assert out.out == (f"converted {tmp_path / 'train.pt'} (torch) to {tmp_path / 'out.ckpt'} (lightning): "
                       "4 tensors, optimizer AdamW, step 1\n")
    written = torch.load(tmp_path / "out.ckpt", weights_only=True)
    assert sorted(written["state_dict"]) == ["model.0.bias", "model.0.weight", "model.1.bias", "model.1.weight"]
    assert written["global_step"] == 1


def test_convert_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    training_file(tmp_path / "train.pt")
    code = main(["convert", str(tmp_path / "train.pt"), str(tmp_path / "hf"), "--to", "hf"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("wse convert: error: ") and "--config CONFIG.json" in err and err.count("\n") == 1
    assert not (tmp_path / "hf").exists()
    assert main(["convert", str(tmp_path / "nothing.pt"), str(tmp_path / "x.pt"), "--to", "torch"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_convert_options_model_only_dtype_rename_param_names(tmp_path, capsys):
    training_file(tmp_path / "train.pt")
    (tmp_path / "rules.yaml").write_text("- ['^0\\.', 'encoder.']\n- ['^1\\.', 'head.']\n")
    code = main(["convert", str(tmp_path / "train.pt"), str(tmp_path / "out.safetensors"), "--to", "safetensors",
                 "--model-only", "--dtype", "bfloat16", "--rename", str(tmp_path / "rules.yaml")])
    assert code == 0, capsys.readouterr().err
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "out.safetensors"))
    assert sorted(tensors) == ["encoder.bias", "encoder.weight", "head.bias", "head.weight"]
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}

    (tmp_path / "names.txt").write_text("0.weight\n0.bias\n1.weight\n1.bias\n")
    code = main(["convert", str(tmp_path / "train.pt"), str(tmp_path / "acc"), "--to", "accelerate"])
    assert code == 0
    (tmp_path / "acc" / "wse_state.json").unlink()  # as Accelerate itself writes it: no order, no step
    assert main(["convert", str(tmp_path / "acc"), str(tmp_path / "back.pt"), "--to", "torch"]) == 2
    assert "--param-names FILE" in capsys.readouterr().err
    code = main(["convert", str(tmp_path / "acc"), str(tmp_path / "back.pt"), "--to", "torch",
                 "--param-names", str(tmp_path / "names.txt"), "--step", "1"])
    assert code == 0
    assert torch.load(tmp_path / "back.pt", weights_only=True)["step"] == 1


def test_inspect_reports_what_a_checkpoint_holds(tmp_path, capsys):
    training_file(tmp_path / "train.pt")
    assert main(["inspect", str(tmp_path / "train.pt"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "torch" and report["step"] == 1 and report["tensors"] == 4
    assert report["dtypes"] == {"float32": {"tensors": 4, "bytes": (12 + 3 + 6 + 2) * 4}}
    assert report["prefix"] == "module."
    (opt,) = report["optimizers"]
    assert opt["algorithm"] == "AdamW" and opt["state_keys"] == ["exp_avg", "exp_avg_sq", "step"]
    assert report["files"][0]["kind"] == "pickle (torch.save) of tensors: read safely (weights_only)"

    save_file({"w": torch.ones(2, 2, dtype=torch.float16)}, str(tmp_path / "w.safetensors"))
    assert main(["inspect", str(tmp_path / "w.safetensors")]) == 0
    text = capsys.readouterr().out
    assert "safetensors" in text and "1 tensors, 8 B: float16 1 (8 B)" in text and "step:       not recorded" in text


def test_inspect_shows_the_update_count_of_each_scheduler_layout(tmp_path, capsys):
    net = training_file(tmp_path / "unused.pt")
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    torch_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5)
    for _ in range(3):
        optimizer.step()
        torch_scheduler.step()
    # pytorch-accelerated's schedulers count updates in ``num_updates``, Megatron-Core's in ``num_steps``.
    states = [torch_scheduler.state_dict(), {"total_steps": 100, "num_updates": 7}, {"max_lr": 0.1, "num_steps": 9}]
    torch.save({"model": net.state_dict(), "schedulers": states, "step": 3}, tmp_path / "train.pt")
    assert main(["inspect", str(tmp_path / "train.pt")]) == 0
    text = capsys.readouterr().out
    assert "scheduler 0: last_epoch 3, last lr [0.1]" in text
    assert "scheduler 1: num_updates 7\n" in text
    assert "scheduler 2: num_steps 9\n" in text
    assert "None" not in text


def test_inspect_names_pickles_that_need_unpickling(tmp_path, capsys):
    folder = tmp_path / "checkpoint-2"
    folder.mkdir()
    save_file({"w": torch.ones(2)}, str(folder / "model.safetensors"))
    (folder / "trainer_state.json").write_text('{"global_step": 2}')
    torch.save({"when": __import__("datetime").date(2024, 1, 1)}, folder / "training_args.bin")
    assert main(["inspect", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    kinds = {f["name"]: f["kind"] for f in report["files"]}
    assert kinds["training_args.bin"].startswith("pickle (torch.save) needing unpickling: datetime.date")
    assert report["step"] == 2 and any("training_args.bin: skipped" in n for n in report["notes"])


def test_the_cli_module_imports_no_torch():
    code = "import sys, wse.cli; wse.cli.build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_convert_to_accelerate_notes_kept_param_groups_once(tmp_path, capsys):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    optimizer = torch.optim.AdamW([{"params": net[0].parameters(), "weight_decay": 0.1},
                                   {"params": net[1].parameters(), "weight_decay": 0.0}], lr=0.01)
    net(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "step": 1}, tmp_path / "train.pt")
    code = main(["convert", str(tmp_path / "train.pt"), str(tmp_path / "acc"), "--to", "accelerate"])
    out = capsys.readouterr()
    assert code == 0, out.err
    printed = out.out + out.err
    assert printed.count("kept the source's 2 param groups") == 1, printed
    assert f"{tmp_path / 'acc'}: kept the source's 2 param groups" in printed
    assert "note: : " not in printed
