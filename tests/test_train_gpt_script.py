"""scripts/train_gpt.py end to end with tiny flags: the built-in corpus, --text-file with a checkpoint and
--resume, and clear one-line errors on bad input."""

import importlib.util
import subprocess
import sys

import pytest

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
        "--eval-every", "3", "--eval-steps", "2", "--log-every", "3", "--warmup-steps", "1"]


def run_script(root, *args):
    return subprocess.run([sys.executable, str(root / "scripts" / "train_gpt.py"), *args],
                          capture_output=True, text=True, cwd=root, timeout=120)


@pytest.fixture(scope="module")
def script():
    """The script as a module, to call main() in-process for the cheap error cases."""
    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("train_gpt_script", ROOT / "scripts" / "train_gpt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_trains_on_the_builtin_corpus_and_reports(root):
    done = run_script(root, *TINY, "--steps", "6", "--max-chars", "20000", "--sample-chars", "40")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "standard library corpus" in out
    assert "step 6/6 | val loss" in out and "tokens/s" in out
    assert "MFU (estimate):" in out and "estimate" in out.split("MFU (estimate):")[1]
    sample = out.split("sample (40 characters, temperature 0.8):\n")[1]
    assert len(sample.rstrip("\n")) >= 30  # 40 characters, some of which may be newlines


def test_text_file_checkpoint_and_resume(root, tmp_path, script, capsys):
    text = "".join(f"line {i}: to be or not to be\n" for i in range(60))
    path = tmp_path / "text.txt"
    path.write_text(text, encoding="utf-8")
    ckpt = tmp_path / "run" / "gpt.pt"
    first = run_script(root, *TINY, "--steps", "4", "--text-file", str(path), "--checkpoint", str(ckpt),
                       "--sample-chars", "0")
    assert first.returncode == 0, first.stderr
    assert f"vocabulary {len(set(text))}" in first.stdout and ckpt.is_file()
    assert "sample" not in first.stdout
    # resumed in-process (a second interpreter start would add seconds to the suite)
    assert script.main([*TINY, "--steps", "6", "--text-file", str(path), "--checkpoint", str(ckpt),
                        "--resume", "--sample-chars", "10"]) == 0
    out = capsys.readouterr().out
    assert "step 6/6 | loss" in out and "step 3/6" not in out  # only the new steps are printed
    assert "(step 6)" in out and "sample (10 characters" in out
    # another model shape cannot resume from it
    with pytest.raises(SystemExit):
        script.main([*TINY, "--n-embd", "32", "--steps", "8", "--text-file", str(path),
                     "--checkpoint", str(ckpt), "--resume"])
    assert "n_embd=32 (checkpoint: 16)" in capsys.readouterr().err


def test_default_path_is_the_kit_recipe_with_the_scripts_defaults(script):
    from bigtrain_lab.recipes import KIT, NANOGPT
    from bigtrain_lab.train import TrainConfig

    args = script.build_parser().parse_args([])
    recipe = script.recipe_from_args(args, args.steps)
    assert recipe == KIT.for_run(2000)
    assert script.train_config(args, recipe) == TrainConfig(steps=2000, eval_every=250, log_every=50,
                                                            **KIT.train_settings())
    args = script.build_parser().parse_args(["--recipe", "nanogpt", "--grad-clip", "0.5", "--grad-accum-steps",
                                             "2", "--compile", "--checkpoint", "ck.pt", "--n-layer", "2"])
    config = script.train_config(args, script.recipe_from_args(args, args.steps))
    assert (config.lr, config.betas, config.grad_clip) == (NANOGPT.lr, NANOGPT.betas, 0.5)
    assert config.grad_accum_steps == 2 and config.compile and config.checkpoint_path == "ck.pt"
    assert config.checkpoint_every == 250 and script.model_config(args, vocab_size=10).n_layer == 2


def test_missing_text_file_is_a_clear_error(root, tmp_path):
    done = run_script(root, "--text-file", str(tmp_path / "missing.txt"), "--steps", "1")
    assert done.returncode == 2
    assert "missing.txt: no such file" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--n-embd", "30", "--n-head", "4"], "divisible by n_head"),
    (["--steps", "0"], "--steps must be an integer >= 1"),
    (["--min-lr", "1"], "--min-lr must be in [0, lr]"),
    (["--resume"], "--resume needs --checkpoint"),
    (["--precision", "fp16", "--device", "cpu"], "fp16 needs a CUDA device"),
])
def test_bad_flags_give_one_line_errors(script, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        script.main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_too_short_text_file(script, capsys, tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("hello world\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        script.main(["--text-file", str(path)])
    assert "too short" in capsys.readouterr().err
