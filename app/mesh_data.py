"""A mesh with its named regions, boundaries, point and edge sets (:class:`MeshData`), and its
record in the mesh cache (:mod:`app.mesh_cache`): the tags by name and everything else as JSON."""

from dataclasses import dataclass
from typing import Any

from dolfinx import mesh as dmesh

from app.facet_tags import FacetTags
from app.mesh_refine import MeshHierarchy


@dataclass(frozen=True)
class MeshData:
    """A mesh with named regions, boundaries, point sets and edge sets.

    Attributes:
        mesh: The DOLFINx mesh.
        cell_tags: Region tag of every cell.
        facets: Boundary tag of the named facets, as (cell, local facet) pairs
            (:mod:`app.facet_tags`); :attr:`facet_tags` numbers them.
        regions: Region name -> cell tag value.
        boundaries: Boundary name -> facet tag value.
        interior_boundaries: Boundaries made of interior facets (use ``dS``); the rest are
            exterior (use ``ds``).
        description: One line saying where the mesh came from.
        region_cells: Region name -> global number of cells.
        boundary_facets: Boundary name -> global number of facets.
        vertex_tags: Point-set tag of the named vertices.
        points: Point set name -> vertex tag value.
        point_vertices: Point set name -> global number of vertices.
        edge_tags: Edge-set tag of the named edges (None below 3D).
        edges: Edge set name -> edge tag value.
        edge_counts: Edge set name -> global number of edges.
        hierarchy: The coarse meshes ``refine`` made this one from, kept only when a solver
            asks for them (geometric multigrid), else None.
    """

    mesh: dmesh.Mesh
    cell_tags: dmesh.MeshTags
    facets: FacetTags
    regions: dict[str, int]
    boundaries: dict[str, int]
    interior_boundaries: frozenset[str]
    description: str
    region_cells: dict[str, int]
    boundary_facets: dict[str, int]
    vertex_tags: dmesh.MeshTags
    points: dict[str, int]
    point_vertices: dict[str, int]
    edge_tags: dmesh.MeshTags | None
    edges: dict[str, int]
    edge_counts: dict[str, int]
    hierarchy: MeshHierarchy | None = None

    @property
    def facet_tags(self) -> dmesh.MeshTags:
        """Boundary tag of the named facets by facet number (creates the mesh's facets on a
        mesh read from the cache or a built-in box: what needs no numbers asks :attr:`facets`
        instead)."""
        return self.facets.meshtags()

    @property
    def fixable(self) -> list[str]:
        """Names a value may be fixed on: boundaries, point sets and edge sets."""
        return [*self.boundaries, *self.points, *self.edges]

    def tags_of(self, name: str) -> tuple[dmesh.MeshTags, int] | None:
        """The tags holding a boundary, point set or edge set, and its tag value (None for
        any other name)."""
        for names, tags in (
            (self.boundaries, self.facet_tags),
            (self.points, self.vertex_tags),
            (self.edges, self.edge_tags),
        ):
            if name in names:
                return tags, names[name]
        return None

    def summary(self) -> str:
        """Multi-line description for ``scalebridge check``; the same text on every rank.

        Not collective (the counts were reduced at build time), so rank 0 may call it alone.
        """
        topology = self.mesh.topology
        lines = [
            f"Mesh: {self.description}",
            f"  {topology.index_map(topology.dim).size_global} cells "
            f"({topology.cell_name()}, geometry order {self.mesh.geometry.cmaps[0].degree}), "
            f"{topology.index_map(0).size_global} vertices, gdim {self.mesh.geometry.dim}",
            "  Regions (dx):",
        ]
        width = max(map(len, [*self.regions, *self.fixable]))
        lines += [
            f"    {name:<{width}}  tag {tag:<3}  {self.region_cells[name]} cells"
            for name, tag in self.regions.items()
        ]
        lines.append("  Boundaries:" if self.boundaries else "  Boundaries: none")
        for name, tag in self.boundaries.items():
            kind = "interior (dS)" if name in self.interior_boundaries else "exterior (ds)"
            lines.append(
                f"    {name:<{width}}  tag {tag:<3}  {kind}  {self.boundary_facets[name]} facets"
            )
        for title, names, counts, what in (
            ("Point sets", self.points, self.point_vertices, "vertices"),
            ("Edge sets", self.edges, self.edge_counts, "edges"),
        ):
            if names:
                lines.append(f"  {title} (fixed values only, no integrals):")
            lines += [
                f"    {name:<{width}}  tag {tag:<3}  {counts[name]} {what}"
                for name, tag in names.items()
            ]
        return "\n".join(lines)

    def cached_tags(self) -> dict[str, dmesh.MeshTags | None]:
        """The tags, by the names the mesh cache stores them under (the facet tags by number,
        for its XDMF file)."""
        return {
            "cell_tags": self.cell_tags,
            "facet_tags": self.facet_tags,
            "point_tags": self.vertex_tags,
            "edge_tags": self.edge_tags,
        }

    def cached_names(self) -> dict[str, Any]:
        """Everything but the mesh and its tags, as JSON for the mesh cache."""
        names = {key: getattr(self, key) for key in _NAMED}
        names["interior_boundaries"] = sorted(self.interior_boundaries)
        names["edged"] = self.edge_tags is not None
        return names

    @classmethod
    def from_cache(
        cls,
        msh: dmesh.Mesh,
        tags: dict[str, dmesh.MeshTags | None],
        facets: FacetTags,
        names: dict[str, Any],
    ) -> "MeshData":
        """The mesh data a cache entry holds (:meth:`cached_tags`, :meth:`cached_names`); its
        description says so (the run's log, written after the mesh is made, shows it)."""
        described = names | {"description": f"{names['description']}, from the mesh cache"}
        return cls(
            mesh=msh,
            cell_tags=tags["cell_tags"],
            facets=facets,
            vertex_tags=tags["point_tags"],
            edge_tags=tags["edge_tags"],
            interior_boundaries=frozenset(names["interior_boundaries"]),
            **{key: described[key] for key in _NAMED},
        )


_NAMED = (
    "regions",
    "boundaries",
    "description",
    "region_cells",
    "boundary_facets",
    "points",
    "point_vertices",
    "edges",
    "edge_counts",
)
#: The names of a mesh cache entry's names.json (:meth:`MeshData.cached_names`).
CACHED_NAMES = (*_NAMED, "interior_boundaries", "edged")
