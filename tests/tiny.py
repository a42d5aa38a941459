"""Tiny random models and tokenizers built offline in seconds, for tests.

A real tokenizer is trained on a few hundred demo sentences with the ``tokenizers`` library (a
WordPiece for BERT-style encoders, a byte-level BPE for Llama and XLM-R-style models), and wrapped
with the special tokens each family expects; the models are random ``from_config`` instances with
two layers and hidden size 32, saved with ``save_pretrained`` like any hub checkpoint.
"""

from __future__ import annotations

from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo"


def _texts() -> list[str]:
    lines = (DEMO / "corpus" / "hinglish.txt").read_text(encoding="utf-8").splitlines()
    import json

    english = [json.loads(x)["text"] for x in (DEMO / "english_sentiment" / "train.jsonl").read_text().splitlines()]
    spanglish = [json.loads(x)["text"] for x in (DEMO / "spanglish_sentiment" / "test.jsonl").read_text().splitlines()]
    return lines[:1500] + english + spanglish


def wordpiece_tokenizer(vocab_size: int = 400):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(_texts(), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def bpe_tokenizer(vocab_size: int = 400, roberta_style: bool = False):
    """Byte-level BPE; ``roberta_style`` adds <s> ... </s> and a <mask> token (XLM-R), else Llama's <s> prefix."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        _texts(),
        trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    single = "<s> $A </s>" if roberta_style else "<s> $A"
    tok.post_processor = processors.TemplateProcessing(
        single=single, pair=f"{single} $B", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    kwargs = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    if roberta_style:
        kwargs.update(pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>")
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)


def _save(model, tokenizer, out: Path) -> Path:
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def tiny_llama(out: Path, seed: int = 0, **sizes) -> Path:
    """A 2-layer random Llama (CLM) with its tokenizer (no pad token: the code must supply one); ``sizes``
    override config fields (``hidden_size=256, num_hidden_layers=8`` for a model whose merge takes a while)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = bpe_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=False,
    )
    config.update(sizes)
    return _save(LlamaForCausalLM(config), tok, out)


def tiny_xlmr(out: Path, seed: int = 0) -> Path:
    """A 2-layer random XLM-R (MLM head) with a byte-level BPE tokenizer in RoBERTa's layout."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    tok = bpe_tokenizer(roberta_style=True)
    torch.manual_seed(seed)
    config = XLMRobertaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=130,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return _save(XLMRobertaForMaskedLM(config), tok, out)


def tiny_bert(out: Path, seed: int = 0, with_head: bool = False) -> Path:
    """A 2-layer random BERT saved like the embedded default: a bare ``BertModel`` with no MLM head."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertModel

    tok = wordpiece_tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
    )
    model = BertForMaskedLM(config) if with_head else BertModel(config)
    return _save(model, tok, out)
