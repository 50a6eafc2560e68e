#pragma once
#define WENSU_VERSION "0.1.0"
