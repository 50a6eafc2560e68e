// The `wensu bench` cases, one file each in apps/wensu/bench/.
#pragma once
#include "commands.h"

namespace wensu::app::bench {

int bench_layer(const Args& args);      // layer.cpp
int bench_attention(const Args& args);  // attention.cpp
int bench_moe(const Args& args);        // moe.cpp
int bench_pretrain(const Args& args);   // pretrain.cpp
int bench_generate(const Args& args);   // generate.cpp

}  // namespace wensu::app::bench
