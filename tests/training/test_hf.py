"""Export to and import from transformers' GPT-2, checked against transformers itself (offline)."""

import json
import logging
import os
import stat

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from training.checkpoint import load_checkpoint, load_model, save_model_checkpoint
from training.config import TokenizerConfig
from training.hf import export_hf, import_hf
from training.model import GPT, GPTConfig
from training.tokenizer import EOT, load_tokenizer, train_tokenizer
from webtext.cli import main

TEXTS = ["The quick brown fox jumps over the lazy dog. It's 2019!", "東京 😀 café\n\n  indented",
         f"two documents{EOT}joined"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    tokenizer = train_tokenizer(iter(TEXTS * 30), TokenizerConfig(vocab_size=300, min_frequency=1))
    tokenizer.save(root / "tok")
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=4, n_embd=64, vocab_size=tokenizer.vocab_size, block_size=32))
    with torch.no_grad():  # non-zero biases and norms, so a mix-up of any tensor shows
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
    save_model_checkpoint(root / "ckpt.pt", model, {"tokenizer_dir": str(root / "tok"), "step": 7})
    return root, model, tokenizer


def test_export_loads_in_transformers_with_equal_logits_and_tokens(checkpoint, tmp_path):
    root, model, tokenizer = checkpoint
    export_hf(root / "ckpt.pt", tmp_path)
    hf = GPT2LMHeadModel.from_pretrained(tmp_path, local_files_only=True).eval()
    idx = torch.randint(0, tokenizer.vocab_size, (2, 32))
    with torch.no_grad():
        assert (hf(idx).logits - model.eval()(idx)[0]).abs().max() < 1e-4
    hf_tokenizer = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    for text in TEXTS:  # transformers treats <|endoftext|> in text as the special token, as GPT-2 did
        assert hf_tokenizer(text)["input_ids"] == tokenizer.encode(text, allow_eot=True)
        assert hf_tokenizer.decode(tokenizer.encode(text)) == text
    assert hf_tokenizer.eos_token_id == tokenizer.eot_id == hf.config.eos_token_id
    assert hf.config.n_positions == 32 and hf.config.activation_function == "gelu_new"


def test_transformers_model_imports_with_equal_logits(checkpoint, tmp_path):
    root, _, tokenizer = checkpoint
    torch.manual_seed(1)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=3, n_head=2, n_embd=32, vocab_size=tokenizer.vocab_size, n_positions=24,
                                    layer_norm_epsilon=1e-5)).eval()
    hf.save_pretrained(tmp_path / "hf")
    export_hf(root / "ckpt.pt", tmp_path / "with-tok")  # only to get tokenizer files in HF layout
    for name in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
        (tmp_path / "hf" / name).write_bytes((tmp_path / "with-tok" / name).read_bytes())
    out = import_hf(tmp_path / "hf", tmp_path / "run" / "gpt2.pt")
    model, saved = load_model(out)
    idx = torch.randint(0, tokenizer.vocab_size, (2, 24))
    with torch.no_grad():
        assert (hf(idx).logits - model(idx)[0]).abs().max() < 1e-4
    assert load_tokenizer(saved["tokenizer_dir"]).sha256() == tokenizer.sha256()
    assert saved["tokenizer_dir"].endswith("gpt2-tokenizer")


def test_openai_style_files_without_prefix_or_safetensors_import(checkpoint, tmp_path):
    """OpenAI's hub files name tensors without `transformer.`, may carry the mask buffers, and
    older copies are pytorch_model.bin; all three load, and a directory without tokenizer too."""
    _, model, _ = checkpoint
    export_hf(checkpoint[0] / "ckpt.pt", tmp_path / "exported")
    tensors = load_file(tmp_path / "exported" / "model.safetensors")
    bare = {k.removeprefix("transformer."): v for k, v in tensors.items()}
    bare["h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 32, 32))
    for variant in ("safetensors", "bin"):
        d = tmp_path / variant
        d.mkdir()
        (d / "config.json").write_bytes((tmp_path / "exported" / "config.json").read_bytes())
        if variant == "safetensors":
            save_file(bare, d / "model.safetensors")
        else:
            torch.save({**tensors, "lm_head.weight": tensors["transformer.wte.weight"]}, d / "pytorch_model.bin")
        imported, saved = load_model(import_hf(d, tmp_path / f"{variant}.pt"))
        assert saved["tokenizer_dir"] is None
        for key, value in model.state_dict().items():
            assert torch.equal(imported.state_dict()[key], value), key


@pytest.mark.parametrize("change, message", [
    ({"model_type": "bert"}, "not 'gpt2'"),
    ({"activation_function": "relu"}, "unsupported GPT-2 variant"),
    ({"n_inner": 100}, "unsupported GPT-2 variant"),
    ({"n_embd": 96}, "weights do not fit"),
    ({"n_positions": None}, "missing|int"),
])
def test_import_refuses_what_it_cannot_represent(checkpoint, tmp_path, change, message):
    export_hf(checkpoint[0] / "ckpt.pt", tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(change)
    if change == {"n_positions": None}:
        del config["n_positions"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        import_hf(tmp_path, tmp_path / "x.pt")


def test_import_and_export_errors(checkpoint, tmp_path):
    root, model, _ = checkpoint
    with pytest.raises(FileNotFoundError, match="no config.json"):
        import_hf(tmp_path, tmp_path / "x.pt")
    export_hf(root / "ckpt.pt", tmp_path / "e")
    (tmp_path / "e" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="unreadable weights"):
        import_hf(tmp_path / "e", tmp_path / "x.pt")
    (tmp_path / "e" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        import_hf(tmp_path / "e", tmp_path / "x.pt")
    save_model_checkpoint(tmp_path / "no-tok.pt", model)
    with pytest.raises(ValueError, match="names no tokenizer; pass --tokenizer"):
        export_hf(tmp_path / "no-tok.pt", tmp_path / "o")
    export_hf(tmp_path / "no-tok.pt", tmp_path / "o", tokenizer_dir=root / "tok")
    assert (tmp_path / "o" / "tokenizer.json").is_file()
    no_bias = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=300, block_size=8, bias=False))
    save_model_checkpoint(tmp_path / "nb.pt", no_bias, {"tokenizer_dir": str(root / "tok")})
    with pytest.raises(ValueError, match="bias=False"):
        export_hf(tmp_path / "nb.pt", tmp_path / "o2")
    small_vocab = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=100, block_size=8))
    save_model_checkpoint(tmp_path / "sv.pt", small_vocab, {"tokenizer_dir": str(root / "tok")})
    with pytest.raises(ValueError, match="tokenizer has 300 tokens but the model only 100"):
        export_hf(tmp_path / "sv.pt", tmp_path / "o3")


def test_cli_round_trip(checkpoint, tmp_path, capsys):
    root, model, _ = checkpoint
    assert main(["export-hf", str(root / "ckpt.pt"), str(tmp_path / "hf")]) == 0
    assert main(["import-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "back.pt")]) == 0
    assert "imported" in capsys.readouterr().out
    back = load_checkpoint(tmp_path / "back.pt")
    for key, value in model.state_dict().items():
        assert torch.equal(back["model"][key], value), key
    (tmp_path / "broken.pt").write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["export-hf", str(tmp_path / "broken.pt"), str(tmp_path / "x")]) == 1
    assert "corrupted, truncated or not a torch checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_exported_files_follow_the_umask(checkpoint, tmp_path, umask):
    before = os.umask(umask)
    try:
        export_hf(checkpoint[0] / "ckpt.pt", tmp_path / "out")
    finally:
        os.umask(before)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in (tmp_path / "out").iterdir()}
    assert "model.safetensors" in modes and set(modes.values()) == {0o666 & ~umask}, modes


def test_generation_config_leaves_max_length_unset_so_generate_does_not_warn(checkpoint, tmp_path, caplog):
    export_hf(checkpoint[0] / "ckpt.pt", tmp_path)
    generation = json.loads((tmp_path / "generation_config.json").read_text())
    assert "max_length" not in generation and generation["eos_token_id"] == checkpoint[2].eot_id
    hf = GPT2LMHeadModel.from_pretrained(tmp_path, local_files_only=True).eval()
    transformers.logging.enable_propagation()  # its warnings reach caplog
    try:
        with caplog.at_level(logging.WARNING):
            out = hf.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=4, do_sample=False)
    finally:
        transformers.logging.disable_propagation()
    assert out.shape == (1, 7)
    assert "max_length" not in caplog.text
