// Two-layer wall: an insulation layer against a brick layer, seen in a 2D section.
//
//   y = H  +-----------+----------------------+
//          |           |                      |
//          | insulation|        brick         |
//          |           |                      |
//   y = 0  +-----------+----------------------+
//        x = 0      x = L1               x = L1 + L2
//
// Physical surfaces (regions): "insulation", "brick".
// Physical curves (boundaries): "left" (x = 0), "right" (x = L1 + L2), "bottom" (y = 0) and
// "top" (y = H), both across the whole width, and "interface" (x = L1), between the layers.
// The layers are fragmented so they share the interface curve: the mesh is conforming there.
// Lengths are in metres. ScaleBridge's mesh.size overrides Mesh.CharacteristicLengthMax.

L1 = 0.05;  // insulation thickness
L2 = 0.10;  // brick thickness
H = 0.05;   // wall height (section height)
Mesh.CharacteristicLengthMax = 0.01;

SetFactory("OpenCASCADE");
Rectangle(1) = {0, 0, 0, L1, H};
Rectangle(2) = {L1, 0, 0, L2, H};
BooleanFragments{ Surface{1}; Delete; }{ Surface{2}; Delete; }

// Fragmenting may renumber entities, so select them by position.
e = 1e-6 * (L1 + L2);
insulation() = Surface In BoundingBox{-e, -e, -e, L1 + e, H + e, e};
brick() = Surface In BoundingBox{L1 - e, -e, -e, L1 + L2 + e, H + e, e};
left() = Curve In BoundingBox{-e, -e, -e, e, H + e, e};
right() = Curve In BoundingBox{L1 + L2 - e, -e, -e, L1 + L2 + e, H + e, e};
interface() = Curve In BoundingBox{L1 - e, -e, -e, L1 + e, H + e, e};
bottom() = Curve In BoundingBox{-e, -e, -e, L1 + L2 + e, e, e};
top() = Curve In BoundingBox{-e, H - e, -e, L1 + L2 + e, H + e, e};

Physical Surface("insulation", 1) = {insulation()};
Physical Surface("brick", 2) = {brick()};
Physical Curve("left", 1) = {left()};
Physical Curve("right", 2) = {right()};
Physical Curve("bottom", 3) = {bottom()};
Physical Curve("top", 4) = {top()};
Physical Curve("interface", 5) = {interface()};
