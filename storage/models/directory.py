"""The Entra directory as mesbot sees it: users, groups and who is in which group."""

from sqlmodel import Field, SQLModel


class DirectoryUser(SQLModel, table=True):
    id: str = Field(primary_key=True)
    email: str = Field(unique=True)  # stored lower-case
    display_name: str
    is_global_admin: bool = False


class DirectoryGroup(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str = Field(index=True)


class GroupMembership(SQLModel, table=True):
    group_id: str = Field(primary_key=True, foreign_key="directorygroup.id")
    user_id: str = Field(primary_key=True, foreign_key="directoryuser.id", index=True)
