"""The CGCNN network (Xie & Grossman, Phys. Rev. Lett. 120, 145301, 2018) in torch.

The layer and parameter names follow the reference implementation (``embedding``,
``convs.{i}.fc_full``, ``convs.{i}.bn1``, ``convs.{i}.bn2``, ``conv_to_fc``, ``fcs.{i}``,
``fc_out``) so that its checkpoints load with ``load_state_dict``. The computation is the
reference's, reorganised for speed on a flat list of real bonds (see :class:`ConvLayer`).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS", "EMBEDDING_LAYERS", "POOLINGS", "READOUTS", "CGCNN", "ConvLayer",
    "uniform_degree",
]

ACTIVATIONS = {
    "softplus": nn.Softplus,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}
POOLINGS = ("mean", "max", "sum")
#: Where the head acts: on the pooled crystal vector (the reference) or on every atom.
READOUTS = ("crystal", "atom")
#: The crystal vectors :meth:`CGCNN.embed` returns: pooled atom vectors, last hidden layer.
EMBEDDING_LAYERS = ("pooled", "hidden")


def _activation_factory(activation):
    """Return a zero-argument callable that builds a fresh activation module."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation={activation!r} is not one of {sorted(ACTIVATIONS)} "
                "(or pass a torch.nn.Module class such as torch.nn.Tanh)"
            )
        return ACTIVATIONS[activation]
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation
    raise ValueError(
        f"activation must be one of {sorted(ACTIVATIONS)} or a torch.nn.Module class, "
        f"got {activation!r}"
    )


class _BatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d that tolerates a training batch of one row.

    A mini-batch holding a single one-atom crystal has one row at ``bn2``; torch refuses to
    normalise it in training mode. Such a batch is normalised with the running statistics
    (as in evaluation) and leaves them unchanged. Parameter names are BatchNorm1d's.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] <= 1:
            return nn.functional.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0,
                self.eps,
            )
        return super().forward(x)


def _norm(n: int, batchnorm: bool) -> nn.Module:
    return _BatchNorm1d(n) if batchnorm else nn.Identity()


class ConvLayer(nn.Module):
    """The gated graph convolution of CGCNN (Eq. 5 of the paper).

    For every bond ``(i, j)`` with Gaussian-expanded length ``u_ij``::

        z_ij = bn1(W [v_i, v_j, u_ij] + b)          # fc_full, 2 * atom_fea_len outputs
        m_ij = sigmoid(z_ij^filter) * g(z_ij^core)
        v_i' = g(v_i + bn2(sum_j m_ij))

    ``W`` acts on a concatenation, so ``W [v_i, v_j, u_ij] = W_s v_i + W_n v_j + W_b u_ij``:
    the two atom blocks are computed once per atom and gathered per bond, which is exact and
    saves most of the multiply-adds of the reference (which builds the ``(N, M, 2F + G)``
    concatenation). Bonds arrive as a flat list of real bonds, so ``bn1``'s batch statistics
    are over real bonds only. When every atom of the batch has the same number of bonds (no
    padding anywhere) the bonds are treated as an ``(n_atoms, M)`` block, and in evaluation
    mode ``bn1`` (a fixed affine map then) is folded into the weights; both are exact
    rearrangements, equal up to float rounding.

    Unlike the reference, which fills missing neighbour slots with atom 0 at distance
    ``radius + 1`` and lets those fake bonds into the sum and into ``bn1``'s statistics,
    padding is dropped; the two agree whenever every atom has ``M`` neighbours within the
    radius (nearly always at the reference 8 Angstrom and ``M = 12``).

    Parameters
    ----------
    atom_fea_len : int
        Length ``F`` of the atom hidden vectors.
    nbr_fea_len : int
        Length ``G`` of the Gaussian bond vectors.
    activation : str or torch.nn.Module class, default="softplus"
        ``g`` above.
    batchnorm : bool, default=True
        ``False`` replaces ``bn1`` and ``bn2`` by identities.
    """

    def __init__(
        self,
        atom_fea_len: int,
        nbr_fea_len: int,
        activation="softplus",
        batchnorm: bool = True,
    ):
        super().__init__()
        act = _activation_factory(activation)
        self.atom_fea_len = atom_fea_len
        self.nbr_fea_len = nbr_fea_len
        self.fc_full = nn.Linear(2 * atom_fea_len + nbr_fea_len, 2 * atom_fea_len)
        self.bn1 = _norm(2 * atom_fea_len, batchnorm)
        self.bn2 = _norm(atom_fea_len, batchnorm)
        self.act_core = act()
        self.act_out = act()

    def forward(
        self,
        atom_fea: torch.Tensor,
        bond_fea: torch.Tensor,
        self_idx: torch.Tensor,
        nbr_idx: torch.Tensor,
        degree: int = 0,
    ) -> torch.Tensor:
        """Update the atom vectors.

        Parameters
        ----------
        atom_fea : Tensor of shape (n_atoms, F)
        bond_fea : Tensor of shape (n_bonds, G)
        self_idx, nbr_idx : LongTensor of shape (n_bonds,)
            Centre and neighbour atom of every bond.
        degree : int, default=0
            If every atom has exactly ``degree`` bonds and ``self_idx`` is
            ``[0]*degree + [1]*degree + ...`` (see :func:`uniform_degree`), the bonds are
            handled as an ``(n_atoms, degree)`` block: broadcasting and a plain sum replace a
            gather and a scatter. ``0``: the general flat path. Same result either way.

        Returns
        -------
        Tensor of shape (n_atoms, F)
        """
        f = self.atom_fea_len
        n = atom_fea.shape[0]
        w, b = self.fc_full.weight, self.fc_full.bias
        w_self, w_nbr, w_bond = w[:, :f], w[:, f : 2 * f], w[:, 2 * f :]
        bn1 = self.bn1
        fold = (
            not self.training
            and isinstance(bn1, nn.BatchNorm1d)
            and bn1.running_var is not None
        )
        if fold:  # evaluation: bn1 is a fixed affine map, folded into fc_full's blocks
            scale = bn1.weight * torch.rsqrt(bn1.running_var + bn1.eps)
            b = (b - bn1.running_mean) * scale + bn1.bias
            w_self, w_nbr, w_bond = (
                w_self * scale[:, None], w_nbr * scale[:, None], w_bond * scale[:, None]
            )
        # W [v_i, v_j, u_ij] + b = (W_s v_i + b) + W_n v_j + W_b u_ij: atom blocks per atom.
        a_self = nn.functional.linear(atom_fea, w_self, b)
        a_nbr = nn.functional.linear(atom_fea, w_nbr)
        # In place on the fresh gathered tensor (no backward formula needs its values).
        z = a_nbr.index_select(0, nbr_idx).addmm_(bond_fea, w_bond.t())
        if degree:
            block = z.view(n, degree, 2 * f)
            if torch.is_grad_enabled():  # in place on a view would cost a copy in backward
                z = (block + a_self.unsqueeze(1)).view(-1, 2 * f)
            else:
                block.add_(a_self.unsqueeze(1))
        else:
            z.add_(a_self.index_select(0, self_idx))
        if not fold:
            z = bn1(z)
        nbr_filter, nbr_core = z.chunk(2, dim=1)
        msg = torch.sigmoid(nbr_filter) * self.act_core(nbr_core)
        if degree:
            summed = msg.view(n, degree, f).sum(dim=1)
        else:
            summed = torch.zeros_like(atom_fea).index_add_(0, self_idx, msg)
        return self.act_out(atom_fea + self.bn2(summed))


def uniform_degree(self_idx: torch.Tensor, n_atoms: int) -> int:
    """``m`` if ``self_idx`` is ``[0]*m + [1]*m + ... + [n_atoms-1]*m``, else 0.

    True whenever no atom of the batch has padded neighbour slots (the usual case at the
    reference radius of 8 Angstrom), which lets :class:`ConvLayer` use its block path.
    """
    n_bonds = self_idx.numel()
    if n_atoms == 0 or n_bonds == 0 or n_bonds % n_atoms:
        return 0
    m = n_bonds // n_atoms
    rows = torch.arange(n_atoms, device=self_idx.device).unsqueeze(1)
    return m if bool((self_idx.view(n_atoms, m) == rows).all()) else 0


def _pool(
    atom_fea: torch.Tensor, crystal_idx: torch.Tensor, n_crystals: int, how: str
) -> torch.Tensor:
    """One segment reduction of atom vectors into crystal vectors (no loop over crystals)."""
    out = atom_fea.new_zeros((n_crystals, atom_fea.shape[1]))
    if how == "max":
        index = crystal_idx.unsqueeze(1).expand_as(atom_fea)
        return out.scatter_reduce_(0, index, atom_fea, "amax", include_self=False)
    out = out.index_add_(0, crystal_idx, atom_fea)
    if how == "mean":
        counts = torch.bincount(crystal_idx, minlength=n_crystals).clamp_(min=1)
        out = out / counts.unsqueeze(1).to(out.dtype)
    return out


class CGCNN(nn.Module):
    """Crystal Graph Convolutional Neural Network.

    embedding -> ``n_conv`` x :class:`ConvLayer` -> pooling over each crystal's atoms ->
    ``conv_to_fc`` -> ``n_h - 1`` hidden layers -> ``fc_out``, in the reference order::

        c = pool(v); c = g(conv_to_fc(g(c))); [dropout]; c = g(fc(c)) ...; out = fc_out(c)

    With ``readout="atom"`` the same hidden layers and ``fc_out`` act on every atom vector and
    the per-atom outputs are pooled (``out = pool(head(v_i))``), as in the paper's site-energy
    analysis: each prediction is then exactly the mean (or sum) of per-site values
    (:meth:`site_outputs`). Same parameters, same names; only the order of pooling and head
    differs.

    With ``n_global > 0`` every crystal also has ``n_global`` global (per-structure) inputs
    ``s`` (temperature, pressure...), concatenated to the activated pooled vector where it
    enters the hidden layers: ``conv_to_fc(concat(g(c), s))``, so ``conv_to_fc`` has
    ``atom_fea_len + n_global`` inputs. With ``readout="atom"`` each atom's row gets its
    crystal's ``s`` (``head(concat(g(v_i), s))``): the per-site decomposition stays exact and
    the site values depend on the globals. ``n_global=0`` is the reference network.

    Parameters
    ----------
    n_atom_fea : int
        Length of the input atom feature vectors (92 for the CGCNN table).
    n_bond_fea : int
        Number of Gaussians of the bond expansion (41 for ``dmin=0, step=0.2, radius=8``).
    atom_fea_len : int, default=64
        Hidden atom vector length.
    n_conv : int, default=3
        Number of convolution layers.
    h_fea_len : int, default=128
        Width of the hidden layers after pooling.
    n_h : int, default=1
        Number of hidden layers after pooling (``conv_to_fc`` plus ``n_h - 1`` in ``fcs``).
    activation : {"softplus", "relu", "silu", "gelu", "elu", "leaky_relu"} or nn.Module class, \
default="softplus"
        The nonlinearity ``g`` everywhere except the gate (always a sigmoid).
    batchnorm : bool, default=True
        ``False`` replaces every batchnorm by an identity.
    pooling : {"mean", "max", "sum"}, default="mean"
        How atom vectors become a crystal vector.
    dropout : float, default=0.0
        Dropout probability after ``conv_to_fc`` (the reference uses 0.5 for classification).
    n_out : int, default=1
        Number of outputs: targets for regression, classes for classification.
    classification : bool, default=False
        Outputs are class logits (train with ``CrossEntropyLoss``); needs ``n_out >= 2``.
    readout : {"crystal", "atom"}, default="crystal"
        ``"crystal"``: pool, then the head (the reference). ``"atom"``: the head on every
        atom, then pool; a prediction decomposes into site contributions for ``"mean"`` and
        ``"sum"`` pooling.
    n_global : int, default=0
        Number of global (per-structure) inputs, passed to :meth:`forward` as ``global_fea``
        (the estimators learn it from the graphs in ``fit`` and scale the values); ``0``:
        none.

    Attributes
    ----------
    embedding : nn.Linear
    convs : nn.ModuleList of ConvLayer
    conv_to_fc : nn.Linear
    fcs : nn.ModuleList of nn.Linear (only when ``n_h > 1``)
    fc_out : nn.Linear

    Examples
    --------
    >>> import torch
    >>> model = CGCNN(n_atom_fea=4, n_bond_fea=3, atom_fea_len=8, h_fea_len=16)
    >>> out = model(atom_fea=torch.rand(3, 4), bond_fea=torch.rand(4, 3),
    ...             self_idx=torch.tensor([0, 1, 1, 2]), nbr_idx=torch.tensor([1, 0, 2, 1]),
    ...             crystal_idx=torch.tensor([0, 0, 1]), n_crystals=2)
    >>> tuple(out.shape)
    (2, 1)
    >>> site = CGCNN(n_atom_fea=4, n_bond_fea=3, atom_fea_len=8, readout="atom")
    >>> inputs = dict(atom_fea=torch.rand(3, 4), bond_fea=torch.rand(4, 3),
    ...               self_idx=torch.tensor([0, 1, 1, 2]), nbr_idx=torch.tensor([1, 0, 2, 1]),
    ...               crystal_idx=torch.tensor([0, 0, 1]), n_crystals=2)
    >>> per_atom = site.site_outputs(**{k: v for k, v in inputs.items() if k != "n_crystals"})
    >>> bool(torch.allclose(site(**inputs)[0], per_atom[:2].mean(dim=0)))
    True
    >>> tuple(site.embed(**inputs, layer="hidden").shape)
    (2, 128)
    """

    def __init__(
        self,
        n_atom_fea: int,
        n_bond_fea: int,
        atom_fea_len: int = 64,
        n_conv: int = 3,
        h_fea_len: int = 128,
        n_h: int = 1,
        activation="softplus",
        batchnorm: bool = True,
        pooling: str = "mean",
        dropout: float = 0.0,
        n_out: int = 1,
        classification: bool = False,
        readout: str = "crystal",
        n_global: int = 0,
    ):
        super().__init__()
        act = _activation_factory(activation)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r} is not one of {list(POOLINGS)}")
        if readout not in READOUTS:
            raise ValueError(f"readout={readout!r} is not one of {list(READOUTS)}")
        for name, value, low in [
            ("n_atom_fea", n_atom_fea, 1),
            ("n_bond_fea", n_bond_fea, 1),
            ("atom_fea_len", atom_fea_len, 1),
            ("n_conv", n_conv, 0),
            ("h_fea_len", h_fea_len, 1),
            ("n_h", n_h, 1),
            ("n_out", n_out, 1),
            ("n_global", n_global, 0),
        ]:
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if classification and n_out < 2:
            raise ValueError(f"classification needs n_out >= 2 classes, got n_out={n_out}")
        self.pooling = pooling
        self.classification = classification
        self.readout = readout
        self.n_global = n_global
        self.embedding = nn.Linear(n_atom_fea, atom_fea_len)
        self.convs = nn.ModuleList(
            [ConvLayer(atom_fea_len, n_bond_fea, activation, batchnorm) for _ in range(n_conv)]
        )
        self.conv_to_fc = nn.Linear(atom_fea_len + n_global, h_fea_len)
        self.conv_to_fc_act = act()
        self.conv_to_fc_act2 = act()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if n_h > 1:
            self.fcs = nn.ModuleList([nn.Linear(h_fea_len, h_fea_len) for _ in range(n_h - 1)])
            self.fc_acts = nn.ModuleList([act() for _ in range(n_h - 1)])
        self.fc_out = nn.Linear(h_fea_len, n_out)

    def forward(
        self,
        atom_fea: torch.Tensor,
        bond_fea: torch.Tensor,
        self_idx: torch.Tensor,
        nbr_idx: torch.Tensor,
        crystal_idx: torch.Tensor,
        n_crystals,
        global_fea: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict one row per crystal.

        The arguments are the keys of :func:`cgcnn_sk.graph.collate_graphs`;
        ``global_fea`` of shape (n_crystals, n_global) is required exactly when
        ``n_global > 0``.

        Returns
        -------
        Tensor of shape (n_crystals, n_out)
            Target values (regression) or class logits (classification).
        """
        n_crystals = int(n_crystals)
        s = self._check_globals(global_fea, n_crystals)
        x = self.atom_vectors(atom_fea, bond_fea, self_idx, nbr_idx)
        if self.readout == "atom":
            rows = None if s is None else s.index_select(0, crystal_idx)
            return _pool(self.fc_out(self._hidden(x, rows)), crystal_idx, n_crystals,
                         self.pooling)
        return self.fc_out(self._hidden(_pool(x, crystal_idx, n_crystals, self.pooling), s))

    def _check_globals(self, global_fea, n_crystals: int) -> torch.Tensor | None:
        """The global inputs as a float tensor of the weights' dtype, or a clear error."""
        k = getattr(self, "n_global", 0)  # modules pickled before n_global existed
        if global_fea is None:
            if k:
                raise ValueError(
                    f"this CGCNN has n_global={k} global inputs but the batch has none "
                    "(global_fea missing): featurize a DataFrame with the same global columns"
                )
            return None
        if not k:
            raise ValueError(
                f"the batch has {tuple(global_fea.shape)[-1]} global features (global_fea) but "
                "this CGCNN has n_global=0: fit it on graphs with global features"
            )
        if tuple(global_fea.shape) != (n_crystals, k):
            raise ValueError(
                f"global_fea has shape {tuple(global_fea.shape)}, expected ({n_crystals}, {k}) "
                f"(n_crystals, n_global)"
            )
        return global_fea.to(self.conv_to_fc.weight.dtype)

    def atom_vectors(
        self,
        atom_fea: torch.Tensor,
        bond_fea: torch.Tensor,
        self_idx: torch.Tensor,
        nbr_idx: torch.Tensor,
    ) -> torch.Tensor:
        """The atom vectors after the last convolution, shape (n_atoms, atom_fea_len)."""
        degree = uniform_degree(self_idx, atom_fea.shape[0])
        x = self.embedding(atom_fea)
        for conv in self.convs:
            x = conv(x, bond_fea, self_idx, nbr_idx, degree)
        return x

    def _hidden(self, c: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """``conv_to_fc`` and the ``n_h - 1`` hidden layers, row by row (crystals or atoms);
        ``s`` (one row per row of ``c``) joins the activated vectors before ``conv_to_fc``."""
        c = self.conv_to_fc_act(c)
        if s is not None:
            c = torch.cat([c, s], dim=1)
        c = self.conv_to_fc_act2(self.conv_to_fc(c))
        c = self.dropout(c)
        if hasattr(self, "fcs"):
            for fc, act in zip(self.fcs, self.fc_acts, strict=True):
                c = act(fc(c))
        return c

    def embed(
        self,
        atom_fea: torch.Tensor,
        bond_fea: torch.Tensor,
        self_idx: torch.Tensor,
        nbr_idx: torch.Tensor,
        crystal_idx: torch.Tensor,
        n_crystals,
        global_fea: torch.Tensor | None = None,
        layer: str = "pooled",
    ) -> torch.Tensor:
        """The learned crystal vectors: one row per crystal.

        Parameters
        ----------
        atom_fea, bond_fea, self_idx, nbr_idx, crystal_idx, n_crystals, global_fea
            As in :meth:`forward`.
        layer : {"pooled", "hidden"}, default="pooled"
            ``"pooled"``: the pooled atom vectors, the structure's part of the input of
            ``conv_to_fc`` (width ``atom_fea_len``; global inputs are *not* included, they
            are the caller's own columns). ``"hidden"``: the output of the last hidden
            layer, the input of ``fc_out`` (width ``h_fea_len``), which does depend on the
            global inputs; with ``readout="atom"`` the pooled per-atom hidden vectors.

        Returns
        -------
        Tensor of shape (n_crystals, atom_fea_len or h_fea_len)
        """
        if layer not in EMBEDDING_LAYERS:
            raise ValueError(f"layer={layer!r} is not one of {list(EMBEDDING_LAYERS)}")
        n_crystals = int(n_crystals)
        s = self._check_globals(global_fea, n_crystals)
        x = self.atom_vectors(atom_fea, bond_fea, self_idx, nbr_idx)
        if layer == "pooled":
            return _pool(x, crystal_idx, n_crystals, self.pooling)
        if self.readout == "atom":
            rows = None if s is None else s.index_select(0, crystal_idx)
            return _pool(self._hidden(x, rows), crystal_idx, n_crystals, self.pooling)
        return self._hidden(_pool(x, crystal_idx, n_crystals, self.pooling), s)

    def site_outputs(
        self,
        atom_fea: torch.Tensor,
        bond_fea: torch.Tensor,
        self_idx: torch.Tensor,
        nbr_idx: torch.Tensor,
        crystal_idx: torch.Tensor | None = None,
        n_crystals=None,
        global_fea: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The head's output on every atom, shape (n_atoms, n_out); needs ``readout="atom"``.

        :meth:`forward` pools these rows with ``pooling``, so for ``"mean"`` (``"sum"``) a
        crystal's output is the mean (sum) of its atoms' rows (with global inputs, each row
        is computed with its crystal's ``global_fea``, which then needs ``crystal_idx``). With
        the default
        ``readout="crystal"`` the head acts on the pooled vector, after a non-linear
        activation, so there is no such decomposition and this raises.
        """
        if self.readout != "atom":
            raise ValueError(
                f"site outputs need readout='atom' (the head applied to every atom, then "
                f"pooled); this CGCNN has readout={self.readout!r}, whose head acts on the "
                "pooled vector through non-linear layers, so its prediction is no sum of "
                "per-site terms"
            )
        rows = None
        if global_fea is not None or getattr(self, "n_global", 0):
            if crystal_idx is None:
                raise ValueError("site outputs with global inputs need crystal_idx")
            n = int(n_crystals) if n_crystals is not None else int(crystal_idx.max()) + 1
            rows = self._check_globals(global_fea, n).index_select(0, crystal_idx)
        x = self.atom_vectors(atom_fea, bond_fea, self_idx, nbr_idx)
        return self.fc_out(self._hidden(x, rows))
