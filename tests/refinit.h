// refinit.h: the deterministic parameters of the PyTorch reference cases. tests/ref/make_refs.py
// holds the same code in Python: change both or neither.
//
// A tensor's values come from a 32-bit hash of (stream, element index): the stream of a network's
// tensor is its index in Net.tensors. u = (hash >> 8) * 2^-23 - 1 lies in [-1, 1) and is exactly
// a float32. By the last part of the name: w -> u / sqrt(fan_in) (fan_in = count / dims[0]);
// b, beta, running_mean -> 0.2 u; gamma -> 1 + 0.25 u; running_var -> 1 + 0.5 u. Every value is
// computed in double and rounded once to float32, so that both sides agree bit for bit.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "model.h"

uint32_t refinit_hash(uint32_t stream, uint32_t i);
double refinit_uniform(uint32_t stream, uint32_t i);   // [-1, 1), a float32 value
// Set every parameter and running statistic of net. 0, or -1 (a tensor name without a rule,
// named in err).
int refinit_net(Net *net, char *err, size_t errlen);
