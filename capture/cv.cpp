// cv.cpp: OpenCV behind an extern "C" API. No exception crosses this file.
#include "cv.h"
