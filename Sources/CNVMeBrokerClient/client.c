#include "nvmegate_client.h"
