"""backbones.random_text_model: a real architecture with random weights, written as an offline model folder."""
from __future__ import annotations

import pytest
import torch

from prodmatch.backbones import load_hf_backbone, random_text_model, tiny_text_model
from prodmatch.errors import DataError

# xlm-roberta at test size (the real one: hidden 768, 12 layers, 250,002 rows, 514 positions)
XLMR_SMALL = {"model_type": "xlm-roberta", "hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 40, "type_vocab_size": 1}


def state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_architecture_of_a_local_folder_with_fewer_layers(tmp_path):
    source = tiny_text_model(tmp_path / "bert", ["botol"])
    folder = random_text_model(tmp_path / "random", source, ["kaos"], layers=1, seed=3)
    model, tok, cfg = load_hf_backbone(folder)  # loadable offline, weights included
    real, _, real_cfg = load_hf_backbone(source)
    assert type(model) is type(real) and cfg.hidden_size == real_cfg.hidden_size == 32
    assert cfg.num_hidden_layers == 1 and real_cfg.num_hidden_layers == 2
    assert tok.tokenize("kaos botol") == ["kaos", "b", "##o", "##t", "##o", "##l"]  # its own words only
    assert cfg.vocab_size == len(tok) and cfg.pad_token_id == tok.pad_token_id
    # random, deterministic by seed
    again = random_text_model(tmp_path / "again", source, ["kaos"], layers=1, seed=3)
    other = random_text_model(tmp_path / "other", source, ["kaos"], layers=1, seed=4)
    a, b, c = (state(load_hf_backbone(f)[0]) for f in (folder, again, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["embeddings.word_embeddings.weight"], c["embeddings.word_embeddings.weight"])


def test_architecture_from_config_fields(tmp_path):
    folder = random_text_model(tmp_path / "xlmr", XLMR_SMALL, vocab=500)
    model, tok, cfg = load_hf_backbone(folder)
    assert type(model).__name__ == "XLMRobertaModel" and cfg.num_hidden_layers == 3
    assert model.embeddings.word_embeddings.num_embeddings == 500 > len(tok)
    assert (cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id) == (tok.pad_token_id, tok.cls_token_id,
                                                                      tok.sep_token_id)
    ids = tok(["botol kaos 250ml"], return_tensors="pt")
    assert model(**ids).last_hidden_state.shape[-1] == 32
    # never fewer rows than the tokenizer has ids
    assert load_hf_backbone(random_text_model(tmp_path / "few", XLMR_SMALL, vocab=10))[2].vocab_size == len(tok)


def test_without_weights_builds_from_the_config_only(tmp_path):
    folder = random_text_model(tmp_path / "xlmr", XLMR_SMALL, vocab=300, weights=False)
    assert not list(folder.glob("*.safetensors")) and (folder / "config.json").is_file()
    model, _, cfg = load_hf_backbone(folder, pretrained=False)
    assert model.embeddings.word_embeddings.num_embeddings == 300


def test_refuses_to_write_over_a_folder_unless_told(tmp_path):
    folder = random_text_model(tmp_path / "xlmr", XLMR_SMALL, vocab=300)
    with pytest.raises(FileExistsError, match="overwrite"):
        random_text_model(folder, XLMR_SMALL, vocab=300, weights=False)
    random_text_model(folder, XLMR_SMALL, vocab=300, weights=False, overwrite=True)
    assert not list(folder.glob("*.safetensors"))  # the earlier weights are gone, not left stale
    with pytest.raises(DataError, match="model_type"):
        random_text_model(tmp_path / "x", {"hidden_size": 32})
    with pytest.raises(DataError, match="no such local folder"):
        random_text_model(tmp_path / "y", tmp_path / "missing")


def test_bad_folders_and_sizes_are_refused_before_any_build(tmp_path):
    """A file as the folder was found only after building the model (named as a concurrent writer);
    layers=0 was ignored and -1 written to config.json; fields that do not fit were a raw ValueError."""
    fields = {"model_type": "bert", "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
    (tmp_path / "a_file").write_text("")
    with pytest.raises(DataError, match="is a file"):
        random_text_model(tmp_path / "a_file", fields, weights=False)
    for bad in ({"layers": 0}, {"layers": -1}, {"vocab": 0}):
        with pytest.raises(DataError, match="must be >= 1"):
            random_text_model(tmp_path / "m", fields, weights=False, **bad)
    with pytest.raises(DataError, match="random_text_model"):
        random_text_model(tmp_path / "m", {**fields, "hidden_size": 30, "num_attention_heads": 4})
    assert not (tmp_path / "m").exists()
