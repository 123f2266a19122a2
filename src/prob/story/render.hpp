#pragma once
// Pictures of a story: one frame per observed transition (the map, the characters and the
// observer's current belief about B's alignment as a bar), a PNG strip, an animated GIF and
// the belief curves.
#include <string>
#include <vector>

#include "core/canvas.hpp"
#include "prob/story/objectives.hpp"

namespace ik::story {

// Frame i shows the state after i transitions (0: the start) and belief b_i.
Canvas draw_frame(const World& w, const Trace& t, int i, int cell = 36);
// Frames after each whole turn (the start, then every B move), `cols` per row.
void save_strip(const std::string& path, const World& w, const Trace& t, int cols = 8);
// Every transition, 0.5 s per frame, looping.
void save_gif(const std::string& path, const World& w, const Trace& t);
// P(help | rational), P(hinder | rational), P(indifferent | rational), P(A wants pink | rational)
// and P(both rational) against time in turns, with the middle of the story marked.
void save_belief_plot(const std::string& path, const Trace& t, const std::string& title);

}  // namespace ik::story
