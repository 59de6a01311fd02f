"""Constrained SID decoding (the user-facing name; the code lives in :mod:`minionerec.decoding`).

A recommender built on semantic IDs must only ever produce SIDs that exist in the catalogue.
SFT trains the response ``"{sid}\\n"`` followed by EOS, so decoding constrains the completion to
``tokenize(sid + "\\n") + [eos]`` for a catalogue SID: the catalogue's SIDs form a token trie
(:class:`SIDTrie`) and at every step only the tokens the trie allows after the tokens generated so
far may be chosen.  Every decoded item is therefore a valid catalogue SID by construction (CC = 0).

Two ways to decode with the trie, checked against each other by the tests:

* :func:`sid_beam_search` / :func:`sid_sample`: the dedicated decoders used by evaluation and RL
  rollouts (one prefill per prompt, prompt KV shared among a user's beams, only allowed
  candidates scored); they return :class:`Decoded` (SID indices, log-probs, completion tokens).
* :func:`generate_with_trie`: HF ``model.generate`` with :class:`TrieLogitsProcessor` and every
  generation setting pinned (a checkpoint's ``generation_config.json`` cannot leak in).

Where each piece lives: ``minionerec/decoding/`` -- ``tokens.py`` (prompt and completion token
ids, left padding), ``trie.py`` (the trie, normalisation modes), ``processor.py`` (logits processor,
``generate`` wrapper), ``attention.py`` (shared-prefix attention), ``stepping.py`` (prefill and
step the model), ``search.py`` (beam search, ``length_penalty``), ``sampling.py`` and
``results.py`` (:class:`Decoded`, :class:`Catalogue`).  The design notes are the docstring of
:mod:`minionerec.decoding`.

Typical use::

    from LogitProcessor import Catalogue, SIDTrie, encode_prompts, pad_token_id_of, sid_beam_search

    catalogue = Catalogue.from_info(read_info(info_file))
    trie = SIDTrie.from_sids(catalogue.sids, tokenizer)
    prompts = encode_prompts(tokenizer, [next_item_prompt(history) for history in histories])
    decoded = sid_beam_search(model, trie, prompts, num_beams=50, pad_token_id=pad_token_id_of(tokenizer))
    decoded.sid_strings(trie)        # [[sid, ...] * 50] per user, best first
"""

from minionerec.decoding import (
    NORMALIZATIONS,
    Catalogue,
    Decoded,
    SIDTrie,
    TrieLogitsProcessor,
    check_num_beams,
    completion_token_ids,
    encode_prompts,
    generate_with_trie,
    left_pad,
    pad_token_id_of,
    pinned_generation_kwargs,
    sid_beam_search,
    sid_beam_search_batch,
    sid_sample,
    sid_sample_batch,
    supports_shared_prefix,
)

__all__ = [
    "NORMALIZATIONS",
    "Catalogue",
    "Decoded",
    "SIDTrie",
    "TrieLogitsProcessor",
    "check_num_beams",
    "completion_token_ids",
    "encode_prompts",
    "generate_with_trie",
    "left_pad",
    "pad_token_id_of",
    "pinned_generation_kwargs",
    "sid_beam_search",
    "sid_beam_search_batch",
    "sid_sample",
    "sid_sample_batch",
    "supports_shared_prefix",
]
