"""ViT (DC-Bench settings): patch 4, dim 512, depth 6, heads 8, MLP dim 512, dropout 0.1 (also on
the embeddings), a cls token and a learned positional embedding (both ``torch.randn`` init).

Patches are embedded by a conv with kernel = stride = patch (a Linear on flattened patches).
Pre-norm blocks: x + Attn(LN(x)), x + MLP(LN(x)) with MLP = Linear -> GELU -> Dropout -> Linear ->
Dropout. ``embed`` = LayerNorm(cls token output); ``classifier`` = Linear(dim, classes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.models.layers import EmbedNet, ModelConfigError
from harness.models.registry import MODELS


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ModelConfigError(f"vit dim {dim} does not divide into {heads} heads")
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        proj: torch.Tensor = self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, d)))
        return proj


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        y: torch.Tensor = x + self.mlp(self.norm2(x))
        return y


class ViT(EmbedNet):
    def __init__(
        self,
        channels: int,
        num_classes: int,
        image_size: tuple[int, int],
        patch_size: int = 4,
        dim: int = 512,
        depth: int = 6,
        heads: int = 8,
        mlp_dim: int = 512,
        dropout: float = 0.1,
        emb_dropout: float = 0.1,
    ):
        super().__init__()
        h, w = image_size
        if h % patch_size or w % patch_size:
            raise ModelConfigError(
                f"vit: input {h}x{w} is not divisible into {patch_size}x{patch_size} patches"
            )
        num_patches = (h // patch_size) * (w // patch_size)
        self.patch_embed = nn.Conv2d(channels, dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.emb_drop = nn.Dropout(emb_dropout)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_dim, dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # [N, patches, dim]
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embedding
        x = self.blocks(self.emb_drop(x))
        cls: torch.Tensor = self.norm(x[:, 0])
        return cls


MODELS.register("vit", ViT)
