"""Export to / import from the Hugging Face transformers GPT-2 layout.

Our modules carry GPT2LMHeadModel's names, so the only conversion is the weight layout:
transformers' GPT-2 (like OpenAI's TF code) uses `Conv1D`, which stores the transpose of
nn.Linear's (out, in) weight. The exported directory loads offline with
`GPT2LMHeadModel.from_pretrained(OUT)` and `AutoTokenizer.from_pretrained(OUT)`; the import
accepts such a directory, e.g. your own copy of OpenAI's GPT-2 weights. transformers itself
is not needed for either direction.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from core.fsio import atomic_write_bytes, atomic_write_text
from training.checkpoint import load_model, save_model_checkpoint
from training.model import GPT, GPTConfig
from training.tokenizer import HF_GPT2_FILES, Tokenizer, load_tokenizer

log = logging.getLogger(__name__)

CONV1D_WEIGHTS = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh")  # transformers' names for GELU's tanh approximation


# -- export ----------------------------------------------------------------------------------
def hf_config(config: GPTConfig, eot_id: int) -> dict:
    """config.json of a transformers GPT2LMHeadModel with our architecture."""
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": config.vocab_size, "n_positions": config.block_size, "n_ctx": config.block_size,
        "n_embd": config.n_embd, "n_layer": config.n_layer, "n_head": config.n_head, "n_inner": None,
        "activation_function": "gelu_new", "layer_norm_epsilon": config.layer_norm_epsilon,
        "resid_pdrop": config.dropout, "embd_pdrop": config.dropout, "attn_pdrop": config.dropout,
        "initializer_range": 0.02, "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False, "tie_word_embeddings": True, "use_cache": True,
        "bos_token_id": eot_id, "eos_token_id": eot_id, "dtype": "float32",
    }


def hf_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """Our weights under transformers' names and layout (the tied lm_head is implied)."""
    out = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue
        out[name] = (tensor.t() if name.endswith(CONV1D_WEIGHTS) else tensor).detach().cpu().contiguous()
    return out


def export_hf(checkpoint, out, tokenizer_dir=None) -> Path:
    """Write config.json, model.safetensors and the tokenizer files of a checkpoint to `out`."""
    model, saved = load_model(checkpoint)
    config = model.config
    if not config.bias:
        raise ValueError("transformers' GPT-2 always has biases; a bias=False model cannot be exported")
    tokenizer_dir = tokenizer_dir or saved.get("tokenizer_dir")
    if not tokenizer_dir:
        raise ValueError(f"{checkpoint}: the checkpoint names no tokenizer; pass --tokenizer TOKDIR")
    tokenizer = load_tokenizer(tokenizer_dir)
    if tokenizer.vocab_size > config.vocab_size:
        raise ValueError(f"tokenizer has {tokenizer.vocab_size} tokens but the model only {config.vocab_size}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "config.json", hf_config(config, tokenizer.eot_id))
    # No max_length: transformers would warn on every generate(max_new_tokens=...) that both are set.
    _write_json(out / "generation_config.json", {"bos_token_id": tokenizer.eot_id, "eos_token_id": tokenizer.eot_id})
    atomic_write_bytes(str(out / "model.safetensors"), save(hf_state_dict(model), metadata={"format": "pt"}))
    save_hf_tokenizer(tokenizer, out, config.block_size)
    return out


def save_hf_tokenizer(tokenizer: Tokenizer, out: Path, max_length: int) -> None:
    """tokenizer.json (+ vocab.json/merges.txt and the configs transformers reads)."""
    atomic_write_text(str(out / "tokenizer.json"), tokenizer.hf_json())
    atomic_write_text(str(out / HF_GPT2_FILES[0]), json.dumps(tokenizer.vocab, ensure_ascii=False))
    atomic_write_text(str(out / HF_GPT2_FILES[1]),
                      "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in tokenizer.merges))
    special = {"bos_token": tokenizer.eot_token, "eos_token": tokenizer.eot_token, "unk_token": tokenizer.eot_token}
    _write_json(out / "special_tokens_map.json", special)
    _write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "GPT2Tokenizer", **special, "add_prefix_space": False,
        "add_bos_token": False, "model_max_length": max_length,
    })


def _write_json(path: Path, data: dict) -> None:
    atomic_write_text(str(path), json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# -- import ----------------------------------------------------------------------------------
def config_from_hf(data: dict, source: Path) -> GPTConfig:
    """Our GPTConfig for a transformers GPT-2 config.json; refuses variants we do not model."""
    if data.get("model_type") != "gpt2":
        raise ValueError(f"{source}: model_type is {data.get('model_type')!r}, not 'gpt2'")
    unsupported = []
    if data.get("activation_function", "gelu_new") not in TANH_GELUS:
        unsupported.append(f"activation_function={data.get('activation_function')!r}")
    if data.get("n_inner") not in (None, 4 * data.get("n_embd", 0)):
        unsupported.append(f"n_inner={data.get('n_inner')}")
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if data.get(flag):
            unsupported.append(f"{flag}=true")
    if data.get("scale_attn_weights", True) is False:
        unsupported.append("scale_attn_weights=false")
    if data.get("tie_word_embeddings", True) is False:
        unsupported.append("tie_word_embeddings=false")
    if unsupported:
        raise ValueError(f"{source}: unsupported GPT-2 variant ({', '.join(unsupported)})")
    try:
        return GPTConfig(
            n_layer=int(data["n_layer"]), n_head=int(data["n_head"]), n_embd=int(data["n_embd"]),
            vocab_size=int(data["vocab_size"]), block_size=int(data["n_positions"]),
            dropout=float(data.get("resid_pdrop", 0.0)),
            layer_norm_epsilon=float(data.get("layer_norm_epsilon", 1e-5)),
        )
    except KeyError as exc:
        raise ValueError(f"{source}: missing {exc.args[0]!r}") from None


def read_hf_weights(directory: Path) -> dict[str, torch.Tensor]:
    """Tensors of model.safetensors, a sharded model.safetensors.index.json, or pytorch_model.bin."""
    single, index, legacy = (directory / "model.safetensors", directory / "model.safetensors.index.json",
                             directory / "pytorch_model.bin")
    try:
        if single.is_file():
            return load_file(single)
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return {name: tensor for shard in shards for name, tensor in load_file(directory / shard).items()}
        if legacy.is_file():
            return torch.load(legacy, map_location="cpu", weights_only=True)
    except (SafetensorError, OSError, RuntimeError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{directory}: unreadable weights ({type(exc).__name__}: {exc})") from None
    raise FileNotFoundError(f"{directory}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin")


def import_hf(directory, out) -> Path:
    """Build a webtext checkpoint (and tokenizer, when the directory has one) from a HF GPT-2 dir."""
    directory, out = Path(directory), Path(out)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{directory}: no config.json (not a transformers model directory)")
    try:
        config = config_from_hf(json.loads(config_path.read_text(encoding="utf-8")), config_path)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{config_path}: not valid JSON: {exc}") from None
    state = {}
    for name, tensor in read_hf_weights(directory).items():
        if name.endswith((".attn.bias", ".attn.masked_bias")):  # causal-mask buffers, not weights
            continue
        name = name if name.startswith(("transformer.", "lm_head.")) else "transformer." + name
        state[name] = tensor.t() if name.endswith(CONV1D_WEIGHTS) else tensor
    head, wte = state.pop("lm_head.weight", None), state.get("transformer.wte.weight")
    if head is not None and wte is not None and not torch.equal(head, wte):
        raise ValueError(f"{directory}: lm_head differs from the token embedding (untied heads are not GPT-2)")
    if wte is not None:
        state["lm_head.weight"] = wte  # the same tensor in our tied model
    model = GPT(config)
    try:
        model.load_state_dict({name: tensor.float() for name, tensor in state.items()})
    except RuntimeError as exc:
        raise ValueError(f"{directory}: weights do not fit the GPT-2 in config.json: {exc}") from None
    tokenizer_dir = None
    try:
        tokenizer = load_tokenizer(directory)
    except FileNotFoundError:
        log.warning("%s has no tokenizer files; the checkpoint will name none", directory)
    else:
        tokenizer_dir = out.parent / f"{out.stem}-tokenizer"
        tokenizer.save(tokenizer_dir)
        tokenizer_dir = str(tokenizer_dir.resolve())
    save_model_checkpoint(out, model, {"tokenizer_dir": tokenizer_dir, "imported_from": str(directory.resolve())})
    return out
