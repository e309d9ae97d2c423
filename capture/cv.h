// cv.h: the C face of OpenCV (capture/cv.cpp is the project's only C++ file).
#pragma once
