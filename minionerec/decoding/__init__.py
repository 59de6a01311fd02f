"""Constrained SID decoding: a tensorised trie, a HF logits processor and a dedicated beam search.

Modules: :mod:`~minionerec.decoding.tokens` (prompt/completion token ids, left padding),
:mod:`~minionerec.decoding.trie` (:class:`SIDTrie`, normalisation modes),
:mod:`~minionerec.decoding.processor` (:class:`TrieLogitsProcessor`, :func:`generate_with_trie`),
:mod:`~minionerec.decoding.attention` (shared-prefix attention),
:mod:`~minionerec.decoding.stepping` (prefill once, step one token per row),
:mod:`~minionerec.decoding.search` (:func:`sid_beam_search`), :mod:`~minionerec.decoding.sampling`
(:func:`sid_sample`) and :mod:`~minionerec.decoding.results` (:class:`Decoded`, :class:`Catalogue`).

Design (shared by evaluation and RL rollouts)
---------------------------------------------

**What is generated.**  SFT trains the response ``"{sid}\\n"`` followed by EOS.  The decoder
therefore constrains the completion to ``tokenize(sid + "\\n") + [eos]`` for a catalogue SID
(:func:`completion_token_ids`).  SIDs may have 3 or 4 tokens in one catalogue; a 3-token SID
may even be a prefix of a 4-token one (after ``abc`` both ``"\\n"`` and ``<d_k>`` are allowed).

**The trie** (:class:`SIDTrie`) is built once from the distinct catalogue SIDs and a tokenizer
and stored as tensors: node 0 is the root; ``child_tokens[n, k]`` / ``child_nodes[n, k]`` list
the ``k``-th allowed token of node ``n`` and the node it leads to (rows padded to the largest
branching factor ``K``; padding repeats the first child's token and has ``child_nodes == -1``);
``leaf_sid[n]`` is the SID index of a terminal node (reached by EOS), else -1.  A row in an
invalid state has node ``-1``; :meth:`SIDTrie.allowed` maps it to "EOS only".  Every lookup is
tensor indexing over all rows at once: no Python loop over beams, no device-to-host copy.

**The logits processor** (:class:`TrieLogitsProcessor`) is stateless: the decoding step is
``input_ids.shape[1] - prompt_length`` (the padded prompt length given at construction) and the
node of each row is recomputed by walking the generated tokens (a loop over at most 6 depths,
vectorised over rows).  Disallowed tokens get ``-inf``; a row with no valid continuation allows
only EOS.  ``normalization="trie"`` additionally renormalises over the trie vocabulary.

**The dedicated beam search** (:func:`sid_beam_search`) prefills each prompt once (users are
batched with left padding) and shares that KV cache among the user's beams: with
``shared_prefix=True`` (default) the prompt KV is kept once per user and each decode step attends
to [prompt KV ; the beam's own few generated tokens] through a registered attention function that
merges the two parts by log-sum-exp (:mod:`minionerec.decoding.attention`; models with sliding-window
layers fall back to expanding the cache to the beams, as ``shared_prefix=False`` does).  At every
step it scores only the candidate tokens allowed by the trie.  With ``normalization="full"``
(default) a candidate's score is its log-probability under the full-vocabulary softmax, so the
search reproduces
``model.generate(num_beams=B, num_return_sequences=B, length_penalty=lp, do_sample=False)`` with
:class:`TrieLogitsProcessor` (same selection rule: top-2B candidates, a candidate ending in EOS
is finished when it ranks among the first B, the next running beams are the best B unfinished;
finished beams rank by ``score / length ** lp``, ``lp = length_penalty`` defaults to 0).
With ``normalization="trie"`` only the trie-vocabulary rows of the LM head are computed (SID
tokens, the newline and EOS: a few hundred rows instead of ~150k) and scores are normalised over
those rows.  With ``normalization="allowed"`` each step is normalised over the tokens the trie
allows there (the model conditioned on staying in the catalogue: item probabilities sum to 1);
forced steps then cost nothing, so once every beam has a single way left to finish
(``SIDTrie.forced_from_depth``, e.g. after the third token of 3-token SIDs) the search appends
the forced ``"\\n"`` + EOS without model calls.  The processor offers all three modes, so each
is tested against ``generate``.
Each user gets the top-B *distinct valid* SIDs (catalogue SIDs are distinct leaves) as a
:class:`Decoded`: the SID index (into ``trie.sids``; :meth:`Decoded.item_rows` maps it to info-file
rows through a :class:`Catalogue`), the summed log-probability, and the completion token ids and
mask (the tokens after the prompt, up to and including EOS) that a GRPO trainer needs to
recompute log-probs.  Constrained sampling (:func:`sid_sample`, temperature) and constrained beam sampling
(``sid_beam_search(..., sample=True)``: Gumbel-top-k, the same as HF's multinomial without
replacement) reuse the same machinery; every output is a valid catalogue SID by construction.

**Pinned generation settings.**  The dedicated decoders never read ``generation_config``.  For
``model.generate`` use :func:`generate_with_trie` (or :func:`pinned_generation_kwargs`), which sets
every sampling/penalty field to a neutral value and blanks ``model.generation_config`` during the
call, so a checkpoint's ``generation_config.json`` (top_k, top_p, repetition_penalty, do_sample,
...) cannot leak in.

Typical use::

    catalogue = Catalogue.from_info(read_info(info_file))
    trie = SIDTrie.from_sids(catalogue.sids, tokenizer)
    prompts = encode_prompts(tokenizer, [next_item_prompt(history) for history in histories])
    decoded = sid_beam_search(model, trie, prompts, num_beams=50, pad_token_id=pad_token_id_of(tokenizer))
    decoded.sid_strings(trie)        # [[sid, ...] * 50] per user, best first
"""

from minionerec.decoding.attention import supports_shared_prefix
from minionerec.decoding.processor import TrieLogitsProcessor, generate_with_trie, pinned_generation_kwargs
from minionerec.catalogue import Catalogue
from minionerec.decoding.results import Decoded
from minionerec.decoding.sampling import sid_sample, sid_sample_batch
from minionerec.decoding.search import sid_beam_search, sid_beam_search_batch
from minionerec.decoding.tokens import completion_token_ids, encode_prompts, left_pad, pad_token_id_of
from minionerec.decoding.trie import NORMALIZATIONS, SIDTrie, check_num_beams

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
