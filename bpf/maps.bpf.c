// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The one definition of every sockmesh map (see lib/maps.h). The other
 * objects declare them extern; bpftool gen object links them to these.
 */
#define SM_MAPS_DEFINE
#include "lib/maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
